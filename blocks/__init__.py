"""The standard block library of dfgraph: examples, and (later) the diffusion denoising core."""
