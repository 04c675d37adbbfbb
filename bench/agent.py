"""Benchmark of the host agent: capture ratio, agent CPU and end-to-end delay per mode and exec rate.

For each capture mode, `procsight agent` runs as its own process and sends to a real OTLP/gRPC endpoint in
this process; a load process (a small C program, else Python) execs `/bin/true RUN I` at 100, 1,000 and
5,000 execs/s. With `--redirected`, every exec of the load has its stdout moved to /dev/null between fork
and exec, as a shell's `cmd > file` or a pipeline would: in eBPF mode each such exec wakes the agent at
once (otel_agent/README.md), the costliest case. Printed per mode and rate:
  captured   fraction of the load's execs that arrived at the endpoint
  cpu/1k     agent CPU (user+sys, % of one core) per 1,000 execs/s of the load; BPF programs run in the
             exec'ing tasks and are not in this number (the idle agent's CPU is shown separately). The agent
             also handles every other process on the machine: "all events" is the rate of everything it
             reported in the window, and the CPU per 1,000 of those
  delay      exec (kernel time) to arrival at the endpoint, p50 and p99, with the default 1 s batching
  pipes      while the load runs, `sh -c 'curl -s URL | sh'` pipelines (the script is one no-op line: the
             shortest-lived case): how often curl's stdout and the inner sh's stdin were read as a pipe
             before the process was gone, and how often both name the same pipe
Targets: eBPF 100% at 5,000/s under 5% of a core per 1,000/s; netlink 100% at 1,000/s; /proc as it is.

Also a reference run in this process: a burst of 20,000 records through the SDK's BatchLogRecordProcessor
(default queue 2,048) against the agent's SpoolingBatchProcessor, same exporter, same endpoint.

`--reference DIR` runs a second agent from another checkout of procsight (e.g. `git archive` of an older
commit) beside this one, on the same load at the same time, each sending to its own endpoint, and prints
this agent's CPU as a ratio of the reference's: on a shared machine whose load changes from minute to
minute, that ratio is steadier than either number.

Run as root: `.venv/bin/python bench/agent.py [--modes ebpf,netlink,proc] [--rates 100,1000,5000] [--seconds 3]
[--reference DIR]`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `testing` is not installed

from testing import serving_files
from testing.otlp_sink import OtlpSink

LOAD_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;
/* load RATE SECONDS RUN [redirected]: spawns /bin/true RUN I at RATE per second, paced on a monotonic
   clock; with "redirected", each child's stdout is moved onto /dev/null before its exec. */
int main(int argc, char **argv) {
    double rate = atof(argv[1]), seconds = atof(argv[2]);
    long total = (long)(rate * seconds), spawned = 0;
    struct timespec start, now;
    posix_spawn_file_actions_t actions, *redirect = NULL;
    if (argc > 4) {
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        redirect = &actions;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    char number[32];
    for (long i = 0; i < total; i++) {
        double due = i / rate;
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            double elapsed = (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
            if (elapsed >= due) break;
            struct timespec pause = {0, (long)((due - elapsed) * 1e9)};
            nanosleep(&pause, NULL);
        }
        snprintf(number, sizeof number, "%ld", i);
        char *args[] = {"/bin/true", argv[3], number, NULL};
        pid_t pid;
        if (posix_spawn(&pid, "/bin/true", redirect, NULL, args, environ) == 0) spawned++;
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
    while (wait(NULL) > 0) {}
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("%ld %.3f\n", spawned, (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9);
    return 0;
}
"""

LOAD_PY = """
import os, sys, time
rate, seconds, run = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
actions = [(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)] if len(sys.argv) > 4 else []
start = time.monotonic(); spawned = 0
for i in range(int(rate * seconds)):
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    os.posix_spawn("/bin/true", ["/bin/true", run, str(i)], os.environ, file_actions=actions); spawned += 1
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0: break
        except ChildProcessError: break
while True:
    try: os.wait()
    except ChildProcessError: break
print(spawned, round(time.monotonic() - start, 3))
"""


def load_command(workdir: Path) -> list[str]:
    if shutil.which("gcc"):
        source, binary = workdir / "load.c", workdir / "load"
        source.write_text(LOAD_C)
        if subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], capture_output=True).returncode == 0:
            return [str(binary)]
    return [sys.executable, "-c", LOAD_PY]


def matching(endpoint: OtlpSink, load_pid: int) -> list:
    """Exec records of the load's children: by parent pid, so execs whose argv was lost still count."""
    return [r for r in endpoint.flat()
            if r.event_name == "process.exec" and r.attributes.get("process.parent_pid") == load_pid]


def wait_settled(endpoint: OtlpSink, load_pid: int, expected: int, timeout: float = 30.0) -> list:
    """Waits until all expected records arrived or nothing new arrived for 3 s."""
    deadline = time.monotonic() + timeout
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        found = matching(endpoint, load_pid)
        if len(found) >= expected:
            return found
        if len(found) != last_count:
            last_count, last_change = len(found), time.monotonic()
        elif time.monotonic() - last_change > 3.0:
            return found
        time.sleep(0.1)
    return matching(endpoint, load_pid)


def run_pipelines(base_url: str, run: str, count: int, pause: float, shells: list[int]) -> None:
    """`count` download-into-shell pipelines, one after the other; the outer shells' pids go to `shells`."""
    for i in range(count):
        outer = subprocess.Popen(["sh", "-c", f"curl -s {base_url}/{run}-{i} | sh"])
        outer.wait()
        shells.append(outer.pid)
        time.sleep(pause)


def pipe_visibility(endpoint: OtlpSink, shells: list[int]) -> dict:
    """Of the pipelines under `shells`: the fraction whose curl stdout, whose sh stdin, and whose both were
    seen as a pipe, and both the same pipe."""
    children: dict[int, dict[str, dict]] = {pid: {} for pid in shells}
    for record in endpoint.flat():
        parent = record.attributes.get("process.parent_pid")
        if record.event_name == "process.exec" and parent in children:
            children[parent][record.attributes.get("process.executable.name")] = record.attributes
    pairs = [(c.get("curl", {}).get("procsight.stdout", ""), c.get("sh", {}).get("procsight.stdin", ""))
             for c in children.values()]
    count = max(len(shells), 1)
    return {"pipelines": len(shells),
            "curl_stdout": sum(out.startswith("pipe:") for out, _ in pairs) / count,
            "sh_stdin": sum(into.startswith("pipe:") for _, into in pairs) / count,
            "paired": sum(out.startswith("pipe:") and out == into for out, into in pairs) / count}


class _ScriptForAnyPath(dict):
    """What `serving_files` serves the pipelines: the same one-line shell script at every path."""

    def get(self, _path: str, _default: object = None) -> bytes:
        return b":\n"


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class RunningAgent:
    label: str  # "this", or "reference" for the agent of `--reference`
    endpoint: OtlpSink
    popen: subprocess.Popen
    process: psutil.Process
    idle_cpu: float = 0.0


def start_agent(mode: str, label: str, endpoint: OtlpSink, workdir: Path, code: Path | None = None) -> RunningAgent:
    """`procsight agent` in `mode`, from this checkout or from `code` (another checkout), once it captures."""
    name = f"{label}-{mode}"
    config = workdir / f"agent-{name}.yaml"
    config.write_text(f"spool: {{directory: {workdir / ('spool-' + name)}}}\nstats_interval: 3600s\n")
    env = {**os.environ, "PYTHONPATH": str(code)} if code else None
    with open(workdir / f"agent-{name}.log", "w") as log_file:  # the child keeps its own descriptor
        agent = subprocess.Popen([sys.executable, "-m", "procsight", "--log-level", "WARNING", "agent", "--mode",
                                  mode, "--endpoint", endpoint.grpc_endpoint, "--config", str(config)], stderr=log_file,
                                 env=env, cwd=code)
    probe = "probe-" + uuid.uuid4().hex[:8]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # wait until it captures (a /bin/sleep lives long enough for every mode)
        subprocess.run(["/bin/sleep", "1.5", probe], check=False, stderr=subprocess.DEVNULL)
        if any(probe in r.attributes.get("process.command_args", []) for r in endpoint.flat()):
            return RunningAgent(label, endpoint, agent, psutil.Process(agent.pid))
        if agent.poll() is not None:
            break
    agent.kill()
    raise RuntimeError(f"agent {name} did not start; see {workdir}/agent-{name}.log")


def run_mode(mode: str, rates: list[int], seconds: float, load: list[str], workdir: Path,
             reference: Path | None, redirected: bool) -> list[dict]:
    rows = []
    with contextlib.ExitStack() as stack:
        base_url = stack.enter_context(serving_files(_ScriptForAnyPath()))
        agents: list[RunningAgent] = []
        try:
            for label, code in [("this", None), *([("reference", reference)] if reference else [])]:
                agents.append(start_agent(mode, label, stack.enter_context(OtlpSink()), workdir, code))
            before = [cpu_seconds(agent.process) for agent in agents]
            time.sleep(2.0)
            for agent, used in zip(agents, before, strict=True):
                agent.idle_cpu = (cpu_seconds(agent.process) - used) / 2.0 * 100
            for rate in rates:
                run = f"run-{mode}-{rate}-{uuid.uuid4().hex[:6]}"
                before = [cpu_seconds(agent.process) for agent in agents]
                window_start = time.time()
                generator = subprocess.Popen([*load, str(rate), str(seconds), run, *(["redirected"] * redirected)],
                                             stdout=subprocess.PIPE, text=True)
                shells: list[int] = []
                pipelines = threading.Thread(target=run_pipelines, args=(base_url, run, int(seconds * 5), 0.2, shells))
                pipelines.start()
                output, _ = generator.communicate()
                pipelines.join()
                spawned, elapsed = int(output.split()[0]), float(output.split()[1])
                window = (window_start, time.time())
                for agent, used in zip(agents, before, strict=True):
                    rows.append(measure(agent, mode, rate, run, generator.pid, spawned, elapsed, window, used, shells))
                    print(format_row(rows[-1]), flush=True)
        finally:
            for agent in agents:
                agent.popen.terminate()
                agent.popen.wait(timeout=60)
    return rows


def measure(agent: RunningAgent, mode: str, rate: int, run: str, load_pid: int, spawned: int, elapsed: float,
            window: tuple[float, float], cpu_before: float, shells: list[int]) -> dict:
    """One row: what `agent` delivered of a load run, and the CPU it took."""
    endpoint = agent.endpoint
    found = wait_settled(endpoint, load_pid, spawned)
    used = cpu_seconds(agent.process) - cpu_before
    endpoint.wait_for(lambda r, last=shells[-1]: r.attributes.get("process.parent_pid") == last, 5)
    # Everything the agent handled meanwhile: the load, and whatever else ran on this machine.
    handled = sum(1 for r in endpoint.flat() if window[0] <= r.time_unix_nano / 1e9 <= window[1])
    delays = sorted(r.received_at - r.time_unix_nano / 1e9 for r in found)
    achieved = spawned / elapsed
    cpu_percent = used / elapsed * 100
    return {
        "agent": agent.label, "mode": mode, "rate": rate, "achieved": achieved, "spawned": spawned,
        # pids wrap around (pid_max is often 32768) in long runs: an exec is its pid at its time
        "captured": len({(r.attributes["process.pid"], r.time_unix_nano) for r in found}) / spawned,
        "with_argv": sum(run in r.attributes.get("process.command_args", ()) for r in found) / spawned,
        "cpu_per_1k": cpu_percent / (achieved / 1000), "idle_cpu": agent.idle_cpu,
        "handled_rate": handled / elapsed,
        "cpu_per_1k_handled": cpu_percent / (handled / elapsed / 1000) if handled else float("nan"),
        "p50": statistics.median(delays) if delays else float("nan"),
        "p99": delays[int(len(delays) * 0.99) - 1] if delays else float("nan"),
        **pipe_visibility(endpoint, shells),
    }


def format_row(row: dict) -> str:
    label = "" if row["agent"] == "this" else f" ({row['agent']})"
    return (f"{row['mode'] + label:20s} {row['rate']:6d}/s (achieved {row['achieved']:7.0f}/s, "
            f"{row['spawned']:6d} execs)  "
            f"captured {row['captured'] * 100:6.2f}% (with argv {row['with_argv'] * 100:6.2f}%)  "
            f"cpu/1k {row['cpu_per_1k']:6.2f}% of a core (idle {row['idle_cpu']:.2f}%; all events "
            f"{row['handled_rate']:5.0f}/s, {row['cpu_per_1k_handled']:5.2f}% per 1k)  "
            f"delay p50 {row['p50']:.3f}s p99 {row['p99']:.3f}s  pipes of {row['pipelines']} curl|sh: curl stdout "
            f"{row['curl_stdout']:.0%}, sh stdin {row['sh_stdin']:.0%}, paired {row['paired']:.0%}")


def sdk_reference(workdir: Path, burst: int = 20_000) -> None:
    """The SDK's default processor against the agent's, on the same burst to the same endpoint."""
    from opentelemetry._logs import LogRecord
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    from core.event import ProcessEvent
    from core.semconv import event_to_attributes
    from otel_agent.config import AgentConfig
    from otel_agent.counters import Counters
    from otel_agent.emitter import Emitter

    events = [ProcessEvent(executable_name="true", command_line=f"/bin/true {i}", command_args=("/bin/true", str(i)),
                           pid=i, timestamp=time.time()) for i in range(burst)]
    with OtlpSink() as endpoint:
        provider = LoggerProvider(shutdown_on_exit=False)
        provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint.grpc_endpoint,
                                                                                  insecure=True)))
        logger = provider.get_logger("bench")
        started = time.process_time()
        for event in events:
            logger.emit(LogRecord(timestamp=int(event.timestamp * 1e9), body=event.command_line,
                                  attributes=event_to_attributes(event), event_name=event.event_name))
        provider.shutdown()
        sdk_cpu = (time.process_time() - started) / burst * 1e6
        sdk_delivered = len(endpoint.flat())
    with OtlpSink() as endpoint:
        config = AgentConfig()
        config.exporter.endpoint = endpoint.grpc_endpoint
        config.batch.queue_size = 2048  # the SDK's default, to compare like with like
        config.spool.directory = str(workdir / "spool-reference")
        emitter = Emitter(config, Counters())
        started = time.process_time()
        for event in events:
            emitter.emit([event])
        emitter.shutdown()
        ours_cpu = (time.process_time() - started) / burst * 1e6
        deadline = time.monotonic() + 60
        while len(endpoint.flat()) < burst and time.monotonic() < deadline:
            time.sleep(0.1)
        ours = len(endpoint.flat())
    print(f"reference: burst of {burst} records, queue 2048: SDK BatchLogRecordProcessor delivered {sdk_delivered} "
          f"({sdk_delivered / burst:.1%}); SpoolingBatchProcessor delivered {ours} ({ours / burst:.1%}); "
          f"ratio {ours / max(sdk_delivered, 1):.2f}x")
    print(f"reference: CPU per record in this process (emit, encode, export; the endpoint's decoding included): "
          f"SDK Logger.emit path {sdk_cpu:.0f} us, agent path {ours_cpu:.0f} us, ratio {sdk_cpu / ours_cpu:.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="ebpf,netlink,proc")
    parser.add_argument("--rates", default="100,1000,5000")
    parser.add_argument("--seconds", type=float, default=3.0, help="load duration per rate")
    parser.add_argument("--reference", type=Path, help="another procsight checkout whose agent runs beside this one")
    parser.add_argument("--redirected", action="store_true", help="every exec of the load has its stdout redirected")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/agent.py needs root (eBPF and the netlink connector)", file=sys.stderr)
        return 2
    rates = [int(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="procsight-bench-") as tmp:
        workdir = Path(tmp)
        load = load_command(workdir)
        print(f"load generator: {'C (posix_spawn)' if load[0].endswith('load') else 'Python'}"
              f"{', every exec redirected' if args.redirected else ''}; "
              f"{os.cpu_count()} CPUs; {args.seconds:.0f} s per rate; load average {os.getloadavg()[0]:.1f}")
        sdk_reference(workdir)
        rows = []
        for mode in args.modes.split(","):
            rows.extend(run_mode(mode, rates, args.seconds, load, workdir, args.reference, args.redirected))
        print(f"\nsummary against targets (load average now {os.getloadavg()[0]:.1f}; other work on this machine "
              "inflates CPU and limits the achieved exec rate):")
        for row in rows:
            target = ""
            if row["agent"] == "reference":
                ours = next(r for r in rows if r["agent"] == "this" and r["mode"] == row["mode"]
                            and r["rate"] == row["rate"])
                target = f"  this agent's CPU per 1k is {ours['cpu_per_1k'] / row['cpu_per_1k']:.2f}x the reference's"
            elif (row["mode"], row["rate"]) in (("ebpf", 5000), ("netlink", 1000)):
                met = row["captured"] >= 0.9999 and (row["mode"] != "ebpf" or row["cpu_per_1k_handled"] < 5)
                goal = "100% and <5% cpu/1k" if row["mode"] == "ebpf" else "100%"
                verdict = "MET" if met else "NOT MET"
                if row["achieved"] < 0.95 * row["rate"]:
                    verdict += f" at the {row['achieved']:.0f}/s this machine reached; the rate itself was not reached"
                target = f"  target {goal}: {verdict}"
            print(format_row(row) + target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
