"""Stage 1, the application: graph-schema XML (v2, v3, v4) read into a typed model of the graph
type and a packed instance (devices, edges, properties and state as the engine's structs)."""
