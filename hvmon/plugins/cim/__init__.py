"""The CIM agent: a WBEM server speaking CIM-XML (DSP0200/DSP0201) for root/virt (docs/cim.md)."""
