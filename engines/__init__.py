"""Engine implementations; each exposes pstack's ``run_engine(xml, rmap={}, options={})``."""
