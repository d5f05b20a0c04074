"""Wire adapter tests: the real openai client against a fake OpenAI server on 127.0.0.1."""
