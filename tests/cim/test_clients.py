"""Real command-line clients: pywbemcli (pull first, then fallback) and Debian's wbemcli."""

from __future__ import annotations

from pathlib import Path

import bcrypt

from .conftest import Running, StartCim, pywbemcli_path, run_tool, wbemcli_path

CS_PATH = 'KVM_ComputerSystem.CreationClassName="KVM_ComputerSystem",Name="test"'


def pywbemcli(running: Running, tmp_path: Path, *args: str) -> str:
    argv = [pywbemcli_path(), "-s", running.url, "-d", "root/virt", "--no-verify", *args]
    result = run_tool(argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def test_pywbemcli_enumerates_and_invokes(cim: Running, tmp_path: Path) -> None:
    classes = pywbemcli(cim, tmp_path, "class", "enumerate", "--di", "--no").split()
    assert "KVM_ComputerSystem" in classes and "KVM_DiskPool" in classes
    out = pywbemcli(cim, tmp_path, "instance", "enumerate", "KVM_ComputerSystem")
    assert "instance of KVM_ComputerSystem" in out and 'Name = "test";' in out
    assert "EnabledState = 2;" in out
    out = pywbemcli(cim, tmp_path, "instance", "invokemethod", CS_PATH, "RequestStateChange",
                    "-p", "RequestedState=9")
    assert "ReturnValue=0" in out
    assert cim.conn.lookup_domain_by_name("test").state()[0].name == "PAUSED"
    out = pywbemcli(cim, tmp_path, "instance", "get", CS_PATH)
    assert "EnabledState = 9;" in out


def test_pywbemcli_finds_the_server_profiles_and_namespaces(cim: Running, tmp_path: Path) -> None:
    out = pywbemcli(cim, tmp_path, "profile", "list")
    assert "System Virtualization" in out and "Virtual System" in out
    assert pywbemcli(cim, tmp_path, "server", "brand").strip() == "hvmon"
    out = pywbemcli(cim, tmp_path, "namespace", "list")
    assert "root/interop" in out and "root/virt" in out
    out = pywbemcli(cim, tmp_path, "instance", "associators", CS_PATH, "--ac",
                    "KVM_SystemDevice", "--no")
    assert out.count("KVM_Processor.") == 2


def wbemcli(*args: str) -> str:
    result = run_tool([wbemcli_path(), *args])
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def test_wbemcli_ei_gi_gc_ai_cm(start_cim: StartCim) -> None:
    hashed = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt(rounds=4)).decode()
    running = start_cim(users={"admin": hashed})
    base = f"http://admin:s3cret-pass@127.0.0.1:{running.port}/root/virt:"
    out = wbemcli("ei", base + "KVM_ComputerSystem")
    assert 'Name="test"' in out and "EnabledState=2" in out
    out = wbemcli("gi", base + CS_PATH)
    assert 'UUID="6695eb01-f6a4-8304-79aa-97f2502e193f"' in out
    out = wbemcli("gc", base + "KVM_ComputerSystem")
    assert "EnabledState=" in out and "UUID=" in out
    out = wbemcli("ai", "-ac", "KVM_SystemDevice", base + CS_PATH)
    assert out.count("KVM_Processor.") == 2 and "KVM_LogicalDisk." in out
    out = wbemcli("cm", base + CS_PATH, "RequestStateChange.RequestedState=3")
    assert "RequestStateChange: 0" in out
    assert not running.conn.lookup_domain_by_name("test").is_active()
    denied = run_tool([wbemcli_path(), "ei",
                       f"http://admin:wrong@127.0.0.1:{running.port}/root/virt:"
                       "KVM_ComputerSystem"])
    assert denied.returncode != 0 and "Invalid username/password" in denied.stderr


def test_wbemcli_error_status(cim: Running) -> None:
    result = run_tool([wbemcli_path(), "gi", f"http://127.0.0.1:{cim.port}/root/virt:"
                       'KVM_ComputerSystem.CreationClassName="KVM_ComputerSystem",Name="ghost"'])
    assert result.returncode != 0
    assert "CIM_ERR_NOT_FOUND" in result.stderr + result.stdout
