"""Novita AI's asynchronous Qwen-Image API: typed models, errors and an aiohttp client."""
