"""Small real LangGraph graphs for the saver tests (no network, no model: plain node functions)."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny and 24°C in {city}."


def weather_agent(state: MessagesState) -> dict:
    """Calls the weather tool for a question, then answers with the tool's result."""
    last = state["messages"][-1]
    if isinstance(last, HumanMessage):
        call = {"name": "get_weather", "args": {"city": "Lisbon"}, "id": f"call_{len(state['messages'])}"}
        return {
            "messages": [
                AIMessage(
                    content="",
                    tool_calls=[call],
                    usage_metadata={"input_tokens": 12, "output_tokens": 7, "total_tokens": 19},
                    response_metadata={"model_name": "fake-model"},
                )
            ]
        }
    assert isinstance(last, ToolMessage)
    return {"messages": [AIMessage(content=f"Here you go: {last.content}", response_metadata={"model_name": "fake-model"})]}


def tool_graph():
    builder = StateGraph(MessagesState)
    builder.add_node("agent", weather_agent)
    builder.add_node("tools", ToolNode([get_weather]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder


REPLY = "Certainly. " + "This is a fairly long answer that keeps going. " * 8


def chat_graph():
    """One node replying ~400 characters to each human message."""

    def reply(state: MessagesState) -> dict:
        return {"messages": [AIMessage(content=f"{REPLY}(turn {len(state['messages']) // 2 + 1})")]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder


def question(turn: int) -> HumanMessage:
    return HumanMessage(content=f"Question {turn}: " + "please tell me more about this topic. " * 5)
