"""SVG drawings for the web view, drawn on the server: a run's timeline, a pipeline's step graph,
and a metric across runs. Each function takes plain values and returns one escaped ``<svg>``."""
