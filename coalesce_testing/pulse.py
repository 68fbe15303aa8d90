"""A private PulseAudio server with null sinks, for tests and benchmarks of shared sound.

``pulseaudio --daemonize`` returns once the daemon accepts clients, which is the readiness signal;
nothing polls. The server has no default script (``-n``): only its own socket (anonymous, in a private
directory) and the null sinks asked for, each with a description the sound libraries match by name
(``soundcard`` matches outputs by name). Clients find it through ``PULSE_SERVER``
(:meth:`PulseServer.env`); the system's server, if any, is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 48_000
SINKS = {"alpha": "CoalesceAlpha", "beta": "CoalesceBeta", "room": "CoalesceRoom"}
"""The tests' null sinks: two senders' outputs (``alpha`` is the default) and the room's."""


class PulseError(RuntimeError):
    """PulseAudio could not be started."""


class PulseMissing(PulseError):
    def __init__(self) -> None:
        super().__init__(
            "PulseAudio is not installed (bash scripts/setup.sh installs it: apt-get install pulseaudio "
            "pulseaudio-utils)"
        )


@dataclass(frozen=True)
class PulseServer:
    """A running private server: its socket's ``address`` (for ``PULSE_SERVER``) and its directory."""

    address: str
    directory: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.client_env())
        env.update(extra)
        return env

    def client_env(self) -> dict[str, str]:
        return {"PULSE_SERVER": self.address, "PULSE_RUNTIME_PATH": str(self.directory)}

    def stop(self) -> None:
        pid_file = self.directory / "pid"
        with contextlib.suppress(OSError, ValueError, IndexError):  # gone already
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)


def start_pulse(directory: Path, sinks: dict[str, str]) -> PulseServer:
    """Start a server in ``directory`` with a null sink per ``{name: description}``; the first is the
    default output."""
    binary = shutil.which("pulseaudio")
    if binary is None or shutil.which("parec") is None or shutil.which("pactl") is None:
        raise PulseMissing()
    directory.mkdir(parents=True, exist_ok=True)
    socket = directory / "native"
    modules = [f"module-native-protocol-unix socket={socket} auth-anonymous=1"]
    modules += [
        f"module-null-sink sink_name={name} rate={RATE} sink_properties=device.description={description}"
        for name, description in sinks.items()
    ]
    env = {
        **os.environ,
        "PULSE_RUNTIME_PATH": str(directory),
        "PULSE_STATE_PATH": str(directory),
        "HOME": str(directory),
        "XDG_CONFIG_HOME": str(directory),
    }
    env.pop("PULSE_SERVER", None)
    command = [
        binary,
        "--daemonize=yes",
        "--use-pid-file=yes",
        "-n",
        "--exit-idle-time=-1",
        "--disallow-exit",
        "--log-target=file:" + str(directory / "pulse.log"),
        *(f"--load={module}" for module in modules),
    ]

    result = subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)
    if result.returncode != 0 or not socket.exists():
        log = (
            (directory / "pulse.log").read_text(errors="replace")[-2000:]
            if (directory / "pulse.log").exists()
            else ""
        )
        raise PulseError(
            f"pulseaudio did not start ({result.returncode}): {result.stderr.decode()[-500:]} {log}"
        )
    server = PulseServer(f"unix:{socket}", directory)
    if sinks:
        subprocess.run(
            ["pactl", "set-default-sink", next(iter(sinks))], env=server.env(), check=True, timeout=10
        )
    return server


def write_tone(path: Path, hertz: float, seconds: float, amplitude: float = 0.5) -> Path:
    """A stereo 16-bit WAV of a sine at ``hertz``."""
    t = np.arange(int(RATE * seconds)) / RATE
    mono = (np.sin(2 * np.pi * hertz * t) * amplitude * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(np.repeat(mono, 2).tobytes())
    return path


def tone_strength(samples: np.ndarray, hertz: float, width: float = 10.0) -> tuple[float, float]:
    """The strongest frequency in mono ``samples`` and how far (dB) the band ``hertz ± width`` stands
    above the rest of the spectrum."""
    window = samples.astype(np.float64) * np.hanning(samples.size)
    power = np.abs(np.fft.rfft(window)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / RATE)
    peak = float(freqs[int(np.argmax(power[1:])) + 1])
    band = (freqs >= hertz - width) & (freqs <= hertz + width)
    rest = ~band & (freqs > 20)
    signal_power = float(power[band].sum())
    noise_power = float(power[rest].sum()) or 1e-12
    return peak, 10 * np.log10(max(signal_power, 1e-12) / noise_power)
