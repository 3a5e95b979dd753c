"""An example LangGraph agent with a tool, and no model to install: it counts the words of
what you say (through a tool call) and answers with the count.

Register it in the TOML config:  [agents.words]  graph = "chatkeep.examples.word_agent:graph"
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def count_words(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


def assistant(state: MessagesState) -> dict:
    last = state["messages"][-1]
    if isinstance(last, HumanMessage):
        call = {"name": "count_words", "args": {"text": last.content}, "id": f"call-{last.id or len(state['messages'])}"}
        return {"messages": [AIMessage(content="", tool_calls=[call])]}
    if isinstance(last, ToolMessage):
        return {"messages": [AIMessage(content=f"Your message has {last.content} words.")]}
    return {"messages": [AIMessage(content="Say something and I will count its words.")]}


builder = StateGraph(MessagesState)
builder.add_node("assistant", assistant)
builder.add_node("tools", ToolNode([count_words]))
builder.add_edge(START, "assistant")
builder.add_conditional_edges("assistant", tools_condition)
builder.add_edge("tools", "assistant")
graph = builder.compile()
