"""How sure the model was of a reply: the number the agent abstains on and escalates on.

At the reply's first token the grammar admits the start of a call ('<') or of an answer; the
backend records the probability of each (`GenerationStats.call_mass`). For a call, the tool's
name is then chosen among the offered names only (the grammar admits nothing else), and the
probability of the name's tokens is the model's preference for that tool over the others. So:

    answer:  confidence = P(answer at the first token)
    call:    confidence = P(call at the first token) x P(the first call's tool name)

A reply whose kind the grammar forced (tool_choice="required", or the last step's answer) has
P(kind) = 1. None when the backend cannot tell (onnxruntime, or no grammar).
"""

from __future__ import annotations

from edgeagent.backends import GenerationStats
from edgeagent.wireformat import SELECT_HEAD, reply_kind

#: tokens probed at the start of a reply: the call marker and a tool name fit in this many
PROBE_TOKENS = 16

#: The shipped adapter's call threshold (SamplingParams.call_threshold, the Agent's default
#: with it): a first reply begins a call only where P(call) at its first token is at least
#: this, else it answers. Chosen by `benchmarks/calibrate_confidence.py --siblings 0.3` on the
#: tool bank's held-out tools (never trained on, not BFCL) as the threshold that makes the most
#: first decisions right (docs/benchmarks.md#confidence).
SHIPPED_CALL_THRESHOLD = 0.66


def reply_confidence(stats: GenerationStats, text: str) -> float | None:
    if stats.call_mass is None or not stats.probes:
        return None
    kind = reply_kind(text)
    if kind != "call":
        return round(1.0 - stats.call_mass, 4)
    name_end = text.find('"', len(SELECT_HEAD) + 1) + 1  # the name's closing quote
    if name_end <= len(SELECT_HEAD):
        return None
    p, at = stats.call_mass, 0
    for piece, prob in stats.probes:
        start, at = at, at + len(piece)
        if at > len(SELECT_HEAD) and start < name_end:  # a token of the name
            p *= prob
        if at >= name_end:
            break
    return round(p, 4)
