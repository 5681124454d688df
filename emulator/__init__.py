"""An Ollama-API server with Ollama's scheduler and a modelled speed, for testing without a GPU."""
