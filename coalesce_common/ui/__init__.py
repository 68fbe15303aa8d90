"""Qt code shared by both apps (the only Qt in coalesce_common; the layer contracts allow nothing else)."""
