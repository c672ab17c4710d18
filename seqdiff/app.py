"""Launch the Streamlit design app (``apps/design.py``): ``seqdiff app`` or ``python -m seqdiff.app``.

The app itself lives beside the package in the source tree (``apps/design.py``); this module finds it,
passes the model choices on through the environment (``SEQDIFF_APP_MODELS``, ``SEQDIFF_APP_DEVICE``)
and runs ``streamlit run`` with the server options given.

Safe defaults: the server listens on ``127.0.0.1`` (this computer only) unless an address is given;
uploaded model files go to a private folder (mode 0700, ``SEQDIFF_APP_UPLOADS``) that is removed when
the app stops; SIGTERM, SIGINT and SIGHUP sent to the launcher are passed on to the server, and the
launcher waits for it, so no server is left behind.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from .domains import domain_names

__all__ = ["app_script", "streamlit_command", "app_environment", "launch", "MODELS_ENV", "DEVICE_ENV", "UPLOADS_ENV",
           "DEFAULT_ADDRESS"]

MODELS_ENV = "SEQDIFF_APP_MODELS"
DEVICE_ENV = "SEQDIFF_APP_DEVICE"
UPLOADS_ENV = "SEQDIFF_APP_UPLOADS"
#: Where the server listens unless ``--address`` says otherwise: this computer only.
DEFAULT_ADDRESS = "127.0.0.1"
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate ``proc``, wait up to ``grace`` seconds, then kill it (and reap it)."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def app_script() -> Path:
    """``apps/design.py`` of the source tree this package belongs to."""
    path = Path(__file__).resolve().parents[1] / "apps" / "design.py"
    if not path.is_file():
        raise FileNotFoundError(f"the design app is not here ({path}); run `seqdiff app` from a source checkout "
                                f"of seqdiff (the app is apps/design.py in the repository)")
    return path


def streamlit_command(*, port: int | None = None, address: str | None = None, headless: bool = False,
                      extra: Sequence[str] = ()) -> list[str]:
    """The ``python -m streamlit run apps/design.py ...`` command line."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_script()),
           "--browser.gatherUsageStats", "false"]
    if port is not None:
        cmd += ["--server.port", str(int(port))]
    cmd += ["--server.address", address or DEFAULT_ADDRESS]
    if headless:
        cmd += ["--server.headless", "true"]
    return cmd + list(extra)


def _parse_models(models: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    if not models:
        return {}
    pairs = models.items() if isinstance(models, Mapping) else [m.split("=", 1) if "=" in m else (m, None)
                                                                for m in models]
    out = {}
    for dom, path in pairs:
        dom = str(dom).strip().lower()
        if path is None or dom not in domain_names():
            raise ValueError(f"--model expects DOMAIN=PATH with DOMAIN one of {', '.join(domain_names())}, "
                             f"got {dom if path is None else f'{dom}={path}'!r}")
        path = str(path).strip()
        if path.lower() not in ("", "none"):
            if not Path(path).expanduser().is_file():
                raise FileNotFoundError(f"--model {dom}={path}: no such model file")
            path = str(Path(path).expanduser().resolve())
        out[dom] = path or "none"
    return out


def app_environment(models: Sequence[str] | Mapping[str, str] | None = None, device: str | None = None,
                    base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the app process: ``--model`` choices merged over an inherited ``SEQDIFF_APP_MODELS``."""
    env = dict(os.environ if base is None else base)
    chosen = _parse_models(models)
    if chosen:
        inherited = env.get(MODELS_ENV, "").strip()
        kept = [] if inherited.startswith("{") else \
            [p for p in inherited.replace(";", ",").split(",") if p.strip() and p.split("=", 1)[0].strip().lower()
             not in chosen]
        env[MODELS_ENV] = ",".join(kept + [f"{d}={p}" for d, p in chosen.items()])
    if device:
        env[DEVICE_ENV] = device
    return env


def launch(*, port: int | None = None, address: str | None = None, headless: bool = False,
           models: Sequence[str] | Mapping[str, str] | None = None, device: str | None = None,
           dry_run: bool = False, extra: Sequence[str] = ()) -> int:
    """Run the app in the foreground (Ctrl+C stops it); ``dry_run`` prints the command instead.

    The server listens on ``127.0.0.1`` unless ``address`` is given; signals to this process go to
    the server, which is waited for; the private upload folder is removed at the end.
    """
    if importlib.util.find_spec("streamlit") is None:
        raise FileNotFoundError("the app needs Streamlit and its plotting helpers: pip install 'seqdiff[app]' "
                                "(streamlit, logomaker, matplotlib)")
    cmd = streamlit_command(port=port, address=address, headless=headless, extra=extra)
    env = app_environment(models, device)
    if dry_run:
        shown = {k: env[k] for k in (MODELS_ENV, DEVICE_ENV) if k in env}
        prefix = " ".join(f"{k}={v}" for k, v in shown.items())
        print((prefix + " " if prefix else "") + " ".join(cmd))
        return 0
    if address and address not in ("127.0.0.1", "localhost", "::1"):
        print(f"seqdiff app: serving on {address}: anyone who can reach this computer there can use the app "
              f"and upload model files to it", file=sys.stderr)
    uploads = tempfile.mkdtemp(prefix="seqdiff-app-uploads-")  # mode 0700: this user only
    env[UPLOADS_ENV] = uploads
    received: list[int] = []
    proc: subprocess.Popen | None = None

    def forward(signum, frame):  # noqa: ARG001
        received.append(signum)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = {s: signal.getsignal(s) for s in _FORWARDED}
    try:
        for s in _FORWARDED:
            signal.signal(s, forward)
        # its own process group: a Ctrl+C in the terminal reaches the server once, through us
        proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        if received:  # a signal that came while it was starting
            proc.send_signal(signal.SIGTERM)
        while True:
            try:
                code = proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                continue
        return 0 if received else code
    finally:
        if proc is not None and proc.poll() is None:
            stop_process(proc)
        for s, h in previous.items():
            signal.signal(s, h)
        shutil.rmtree(uploads, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(launch(extra=sys.argv[1:]))
