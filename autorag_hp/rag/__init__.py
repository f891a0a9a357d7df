"""autorag_hp.rag."""
