"""Which prompt template a model id implies: pure, shared by settings and the stack.

The Bedrock adapter speaks Meta Llama's native request (``prompt``,
``max_gen_len``) and streams with ``InvokeModelWithResponseStream``; the
prompt itself must be in the template of the model's generation (AWS, "Meta
Llama models" in the Bedrock user guide). So the family follows the model id
unless the deployer names one, and a contradiction is refused at load.
"""

from __future__ import annotations

import re
from typing import Literal

PromptFamily = Literal["llama2", "chatml", "llama3"]

# Bedrock's Llama 2 chat models are past end of life (Bedrock "Model lifecycle");
# Llama 3.1 8B Instruct is active, and in us-east-1 (the dev stack's region) it
# is served on demand through the US cross-Region inference profile.
DEFAULT_BEDROCK_CHAT_MODEL = "us.meta.llama3-1-8b-instruct-v1:0"
# Cross-Region inference profile ids put a geography before the model id.
PROFILE_PREFIX = re.compile(r"^(us|eu|apac|global|us-gov|ca|jp|au)\.")


def bedrock_base_model(model_id: str) -> str:
    return PROFILE_PREFIX.sub("", model_id)


def bedrock_family(model_id: str) -> PromptFamily | None:
    """The template of a Bedrock Meta Llama id; None for ids we don't know."""
    base = bedrock_base_model(model_id)
    if base.startswith("meta.llama4"):
        # AWS: Llama 4 Instruct can't be used with InvokeModelWithResponseStream.
        raise ValueError(
            f"{model_id}: Bedrock does not stream Llama 4 models with "
            "InvokeModelWithResponseStream, which the chat adapter uses; pick a Llama 3.x "
            f"Instruct model such as {DEFAULT_BEDROCK_CHAT_MODEL}"
        )
    if base.startswith("meta.llama3"):
        return "llama3"
    if base.startswith("meta.llama2"):
        return "llama2"
    return None


def jumpstart_family(model_id: str) -> PromptFamily:
    """SageMaker JumpStart ids name the generation: meta-textgeneration-llama-3-…"""
    return "llama3" if re.search(r"llama-3", model_id) else "llama2"


def resolve_bedrock_family(model_id: str, configured: str | None) -> str:
    """The configured family if it agrees with the id, else the id's; refuse a mismatch."""
    implied = bedrock_family(model_id)
    if configured is None:
        if implied is None:
            raise ValueError(
                f"the prompt family of Bedrock model {model_id!r} is unknown: name it "
                "(llama2, llama3 or chatml)"
            )
        return implied
    if implied is not None and configured != implied:
        raise ValueError(
            f"prompt family {configured!r} does not match Bedrock model {model_id!r} "
            f"({implied}): remove the family setting (it follows the model) or set {implied}"
        )
    return configured
