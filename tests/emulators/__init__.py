"""Local fake provider APIs (OpenAI Images, Azure OpenAI, Stability AI, Vertex AI, Gemini API, Amazon Bedrock,
Together, Fireworks, xAI, Recraft, Black Forest Labs, fal) over real HTTP.

Each validates requests as its provider does and takes injected faults.

    emu = OpenAIEmulator(api_key="sk-test-openai")     # None accepts any (or no) key
    await emu.start()                                   # 127.0.0.1, free port unless port=...
    emu.base_url                                        # OpenAI ".../v1"; Stability the origin
    emu.inject(Fault.status(503), times=1)              # next request(s), FIFO; times=None = until cleared
    emu.set_fault_rate(0.3, [Fault.status(500), Fault.reset()], seed=1)
    emu.inject(Fault.stream_reset())                    # OpenAI/Azure `stream: true`: RST after the first
                                                        # partial image (or stream_error, stream_stall, stream_gap)
    emu.requests                                        # [RecordedRequest]
    emu.reset(); await emu.stop()

    with StabilityEmulator.running_in_thread(api_key="sk-test") as emu: ...

The asynchronous ones (BFLEmulator, FalEmulator) also take job faults (`fail_next_jobs(JobFault...)`),
poll faults (`inject_on_polls`) and serve results from `emu.delivery`, a second port.

Other processes use the `/_emulator/*` HTTP control API (see `control`) and
`python -m tests.emulators PROVIDER --port N [--api-key K]` (see `__main__`).
"""

from .async_jobs import JobFault
from .azure_openai import AzureOpenAIEmulator
from .bedrock import BedrockEmulator
from .bfl import BFLEmulator
from .emulator import AnswerMode, Emulator
from .fal import FalEmulator
from .faults import Fault
from .fireworks import FireworksEmulator
from .forms import FormFile
from .gemini_api import GeminiApiEmulator
from .openai_images import OpenAIEmulator
from .recording import RecordedRequest
from .recraft import RecraftEmulator
from .stability import StabilityEmulator
from .together import TogetherEmulator
from .vertex import VertexEmulator
from .xai import XAIEmulator

__all__ = [
    "AnswerMode",
    "AzureOpenAIEmulator",
    "BFLEmulator",
    "BedrockEmulator",
    "Emulator",
    "FalEmulator",
    "Fault",
    "FireworksEmulator",
    "FormFile",
    "GeminiApiEmulator",
    "JobFault",
    "OpenAIEmulator",
    "RecordedRequest",
    "RecraftEmulator",
    "StabilityEmulator",
    "TogetherEmulator",
    "VertexEmulator",
    "XAIEmulator",
]
