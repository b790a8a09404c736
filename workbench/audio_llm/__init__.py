"""The audio-LLM arm: one audio + prompt → text call, windowed when a recording exceeds the model's limit."""
