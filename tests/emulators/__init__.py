"""Local fake provider APIs (OpenAI Images, Azure OpenAI, Stability AI, Black Forest Labs, fal) over real HTTP.

    emu = OpenAIEmulator(api_key="sk-test-openai")     # None accepts any (or no) key
    await emu.start()                                   # 127.0.0.1, free port unless port=...
    emu.base_url                                        # OpenAI ".../v1"; Stability the origin
    emu.inject(Fault.status(503), times=1)              # next request(s), FIFO; times=None = until cleared
    emu.set_fault_rate(0.3, [Fault.status(500), Fault.reset()], seed=1)
    emu.requests                                        # [RecordedRequest]
    emu.reset(); await emu.stop()

    with StabilityEmulator.running_in_thread(api_key="sk-test") as emu: ...

The asynchronous ones (BFLEmulator, FalEmulator) also take job faults (`fail_next_jobs(JobFault...)`),
poll faults (`inject_on_polls`) and serve results from `emu.delivery`, a second port.

Other processes use the `/_emulator/*` HTTP control API (see `control`) and
`python -m tests.emulators {openai|stability} --port N [--api-key K]`.
"""

from .async_jobs import JobFault
from .azure_openai import AzureOpenAIEmulator
from .bfl import BFLEmulator
from .emulator import AnswerMode, Emulator
from .fal import FalEmulator
from .faults import Fault
from .forms import FormFile
from .openai_images import OpenAIEmulator
from .recording import RecordedRequest
from .stability import StabilityEmulator

__all__ = [
    "AnswerMode",
    "AzureOpenAIEmulator",
    "BFLEmulator",
    "Emulator",
    "FalEmulator",
    "Fault",
    "FormFile",
    "JobFault",
    "OpenAIEmulator",
    "RecordedRequest",
    "StabilityEmulator",
]
