"""autorag-hp."""
