"""autorag_hp.storage."""
