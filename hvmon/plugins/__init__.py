"""In-tree plugins: agents and commands built on hvmon's public API."""
