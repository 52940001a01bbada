"""Record handoffs from inside agent frameworks, in the native format, through a ``Recorder``.

``openai_agents`` (extra ``openai-agents``) hooks the OpenAI Agents SDK; ``langgraph`` (extra
``langgraph``) hooks LangGraph. Each module imports its framework, so import only the one you use.
"""
