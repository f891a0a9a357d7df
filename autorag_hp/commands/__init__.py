"""CLI sub-commands, one module each (imported lazily by autorag_hp.cli)."""
