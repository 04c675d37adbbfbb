"""The BPF program of the eBPF capture, as C text for bcc, and the ctypes layouts of its events.

It reads only tracepoint arguments and BPF helpers, never kernel structs, so kernel headers that do not
match the running kernel are harmless (bcc still wants some headers to compile against).

- `syscalls:sys_enter_execve(at)` copies filename and argv (bounded) into `pending`, keyed by thread id.
- `sched:sched_process_exec` fires only for executions that succeeded: it completes the pending entry
  (pid, uid, comm, time, parent) and sends it; `sys_exit_execve(at)` forgets entries of failed calls.
- `sched:sched_process_fork` remembers each child's parent pid and name in `parents`;
  `sched:sched_process_exit` removes them.
- `syscalls:sys_enter_dup2`/`dup3` onto descriptor 0 or 1, and `sys_enter_close` of one (the next open,
  pipe or socket takes the lowest free descriptor: glibc's `posix_spawn` opens a file onto stdout that
  way), mark the process in `redirected`: this is how a shell (or any spawner) wires a pipe, socket or
  file to a child's stdin or stdout between fork and exec, and how a reverse shell or a daemon rewires its
  own. Forks inherit the mark, and an exec consumes it:
  the exec of a marked process wakes user space at once, so it reads /proc/PID/fd before a short pipeline
  member (`curl … | sh`) or a reverse shell's `id` exits; other execs wait for the next drain (see
  `ebpf.py`), which costs less.
- The agent's own network events (its exports) are dropped here (`AGENT_TGID`) and counted.
- `sock:inet_sock_set_state` reports TCP sockets entering LISTEN, and outbound connections reaching
  ESTABLISHED; the owner of an outbound connection is noted at SYN_SENT, which runs in the connecting
  process, because ESTABLISHED usually happens in softirq context with an unrelated current task.
"""

from __future__ import annotations

import struct

# Mirrors of the C definitions that user space reads (kinds other than these two are listens).
EV_EXEC = 1
EV_CONNECT = 2
FLAG_TRUNCATED = 1

SOURCE = r"""
#define EV_EXEC 1
#define EV_CONNECT 2
#define EV_LISTEN 3
#define FLAG_TRUNCATED 1
#define FLAG_NO_ARGV 2  // the exec began before the program was attached: user space reads argv from /proc
#define FILENAME_LEN 256
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_LISTEN 10
#define PROTO_TCP 6
#define FAMILY_INET 2
#define FAMILY_INET6 10
#define COUNT_LOST 0
#define COUNT_SELF 1
#ifndef BPF_RB_NO_WAKEUP
#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_FORCE_WAKEUP 2
#endif

struct exec_event {
    u32 kind;
    u32 pid;
    u32 ppid;
    u32 uid;
    u64 ts;
    u64 cgroup_id;
    u32 argc;
    u32 args_len;
    u32 flags;
    u32 pad;
    char comm[16];
    char pcomm[16];
    char filename[FILENAME_LEN];
    char args[2 * ARGS_SIZE];
};

struct net_event {
    u32 kind;
    u32 pid;
    u32 ppid;
    u32 uid;
    u64 ts;
    u64 cgroup_id;
    u16 family;
    u16 sport;
    u16 dport;
    u16 pad;
    u8 saddr[16];
    u8 daddr[16];
    char comm[16];
};

struct parent_t {
    u32 ppid;
    char comm[16];
};

struct owner_t {
    u32 pid;
    u32 uid;
    u64 cgroup_id;
    char comm[16];
};

BPF_PERCPU_ARRAY(scratch, struct exec_event, 1);
BPF_PERCPU_ARRAY(counts, u64, 2);  // COUNT_LOST: events the buffer had no room for; COUNT_SELF: the agent's own
BPF_TABLE("lru_hash", u32, struct exec_event, pending, PENDING_ENTRIES);
BPF_TABLE("lru_hash", u32, struct parent_t, parents, PARENT_ENTRIES);
BPF_TABLE("lru_hash", u64, struct owner_t, connecting, 8192);
BPF_TABLE("lru_hash", u32, u8, redirected, 8192);  // process id -> stdin/stdout moved since its last exec

#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(events, BUFFER_PAGES);
#else
BPF_PERF_OUTPUT(events);
#endif

// bcc does not allow map calls inside macros, hence a function for the two output kinds.
// Ring buffer records do not wake user space unless `wake` (BPF_RB_NO_WAKEUP): it drains the buffer on
// a short timer instead, so a burst costs one wake-up per interval rather than one per exec.
static __always_inline int submit(void *ctx, void *data, u32 size, int wake) {
#ifdef USE_RINGBUF
    return events.ringbuf_output(data, size, wake ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
#else
    return events.perf_submit(ctx, data, size);
#endif
}

static __always_inline void count(int which) {
    u64 *value = counts.lookup(&which);
    if (value)
        __sync_fetch_and_add(value, 1);
}

static __always_inline int note_redirect(u64 newfd) {
    if (newfd <= 1) {
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        u8 one = 1;
        redirected.update(&pid, &one);
    }
    return 0;
}

#ifdef HAVE_DUP2  // arm64 and newer architectures have only dup3
TRACEPOINT_PROBE(syscalls, sys_enter_dup2) {
    return note_redirect(args->newfd);
}
#endif

TRACEPOINT_PROBE(syscalls, sys_enter_dup3) {
    return note_redirect(args->newfd);
}

TRACEPOINT_PROBE(syscalls, sys_enter_close) {
    return note_redirect(args->fd);
}

static __always_inline int remember_argv(const char *filename, const char *const *argv) {
    int zero = 0;
    struct exec_event *e = scratch.lookup(&zero);
    if (!e)
        return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    e->kind = EV_EXEC;
    e->argc = 0;
    e->args_len = 0;
    e->flags = 0;
    bpf_probe_read_user_str(e->filename, sizeof(e->filename), filename);
    for (int i = 0; i < MAX_ARGS; i++) {
        const char *argp = NULL;
        bpf_probe_read_user(&argp, sizeof(argp), &argv[i]);
        if (!argp)
            goto done;
        u32 offset = e->args_len;
        if (offset >= ARGS_SIZE) {
            e->flags |= FLAG_TRUNCATED;
            goto done;
        }
        offset &= ARGS_SIZE - 1;
        int n = bpf_probe_read_user_str(&e->args[offset], ARG_LEN, argp);
        if (n <= 0)
            goto done;
        if (n == ARG_LEN)
            e->flags |= FLAG_TRUNCATED;
        e->args_len = offset + n;
        e->argc++;
    }
    {
        const char *more = NULL;
        bpf_probe_read_user(&more, sizeof(more), &argv[MAX_ARGS]);
        if (more)
            e->flags |= FLAG_TRUNCATED;
    }
done:
    pending.update(&tid, e);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_execve) {
    return remember_argv(args->filename, args->argv);
}

TRACEPOINT_PROBE(syscalls, sys_enter_execveat) {
    return remember_argv(args->filename, args->argv);
}

TRACEPOINT_PROBE(syscalls, sys_exit_execve) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    pending.delete(&tid);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_execveat) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    pending.delete(&tid);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec) {
    u32 old_pid = args->old_pid;
    struct exec_event *e = pending.lookup(&old_pid);
    if (!e) {
        int zero = 0;
        e = scratch.lookup(&zero);
        if (!e)
            return 0;
        e->kind = EV_EXEC;
        e->argc = 0;
        e->args_len = 0;
        e->flags = FLAG_NO_ARGV;
    }
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->uid = (u32)bpf_get_current_uid_gid();
    e->ts = bpf_ktime_get_ns();
    e->cgroup_id = bpf_get_current_cgroup_id();
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    unsigned short name_offset = args->data_loc_filename & 0xFFFF;
    bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)args + name_offset);
    u32 pid = e->pid;
    struct parent_t *parent = parents.lookup(&pid);
    if (parent) {
        e->ppid = parent->ppid;
        __builtin_memcpy(e->pcomm, parent->comm, sizeof(e->pcomm));
    } else {
        e->ppid = 0;
        e->pcomm[0] = 0;
    }
    u32 size = offsetof(struct exec_event, args) + (e->args_len & (2 * ARGS_SIZE - 1));
    int wake = redirected.lookup(&pid) != NULL;
    if (wake)
        redirected.delete(&pid);
    if (submit(args, e, size, wake) < 0)
        count(COUNT_LOST);
    pending.delete(&old_pid);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_fork) {
    struct parent_t parent = {};
    parent.ppid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(&parent.comm, sizeof(parent.comm));
    u32 child = args->child_pid;
    parents.update(&child, &parent);
    if (redirected.lookup(&parent.ppid)) {
        u8 one = 1;
        redirected.update(&child, &one);
    }
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit) {
    u32 pid = args->pid;
    parents.delete(&pid);
    redirected.delete(&pid);
    return 0;
}

static __always_inline void send_net(void *ctx, struct net_event *ev, u32 kind, struct owner_t *owner,
                                     u16 family, u16 sport, u16 dport) {
    ev->kind = kind;
    ev->pid = owner->pid;
    ev->uid = owner->uid;
    ev->cgroup_id = owner->cgroup_id;
    __builtin_memcpy(ev->comm, owner->comm, sizeof(ev->comm));
    ev->ts = bpf_ktime_get_ns();
    ev->family = family;
    ev->sport = sport;
    ev->dport = dport;
    u32 pid = owner->pid;
    if (pid == AGENT_TGID) {
        count(COUNT_SELF);
        return;
    }
    struct parent_t *parent = parents.lookup(&pid);
    ev->ppid = parent ? parent->ppid : 0;
    if (submit(ctx, ev, sizeof(*ev), 0) < 0)
        count(COUNT_LOST);
}

static __always_inline void current_owner(struct owner_t *owner) {
    owner->pid = bpf_get_current_pid_tgid() >> 32;
    owner->uid = (u32)bpf_get_current_uid_gid();
    owner->cgroup_id = bpf_get_current_cgroup_id();
    bpf_get_current_comm(&owner->comm, sizeof(owner->comm));
}

TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != PROTO_TCP)
        return 0;
    u64 sk = (u64)args->skaddr;
    int oldstate = args->oldstate;
    int newstate = args->newstate;
    if (newstate == TCP_SYN_SENT) {
        struct owner_t owner = {};
        current_owner(&owner);
        connecting.update(&sk, &owner);
        return 0;
    }
    u32 kind;
    struct owner_t owner = {};
    if (oldstate == TCP_SYN_SENT) {
        struct owner_t *noted = connecting.lookup(&sk);
        if (!noted)
            return 0;
        owner = *noted;
        connecting.delete(&sk);
        if (newstate != TCP_ESTABLISHED)
            return 0;
        kind = EV_CONNECT;
    } else if (newstate == TCP_LISTEN) {
        current_owner(&owner);
        kind = EV_LISTEN;
    } else {
        return 0;
    }
    struct net_event ev = {};
    u16 family = args->family;
    if (family == FAMILY_INET) {
        bpf_probe_read_kernel(ev.saddr, 4, args->saddr);
        bpf_probe_read_kernel(ev.daddr, 4, args->daddr);
    } else if (family == FAMILY_INET6) {
        bpf_probe_read_kernel(ev.saddr, 16, args->saddr_v6);
        bpf_probe_read_kernel(ev.daddr, 16, args->daddr_v6);
    } else {
        return 0;
    }
    send_net(args, &ev, kind, &owner, family, args->sport, args->dport);
    return 0;
}
"""


# The events as user space unpacks them, in one call each (ctypes field by field costs several times more).
# kind, pid, ppid, uid, ts, cgroup_id; then argc, args_len, flags, pad, comm, pcomm, filename (argv follows)
EXEC_EVENT_HEAD = struct.Struct("<IIIIQQIIII16s16s256s")
# kind, pid, ppid, uid, ts, cgroup_id; then family, sport, dport, pad, saddr, daddr, comm
NET_EVENT = struct.Struct("<IIIIQQHHHH16s16s16s")


COUNT_LOST, COUNT_SELF = 0, 1  # indexes of the `counts` map


def compile_flags(max_args: int, args_size: int, arg_length: int, buffer_pages: int, ring_buffer: bool,
                  agent_tgid: int, have_dup2: bool) -> list[str]:
    """`-D` definitions for bcc; `args_size` must be a power of two and `arg_length` at most `args_size`."""
    flags = [f"-DMAX_ARGS={max_args}", f"-DARGS_SIZE={args_size}", f"-DARG_LEN={arg_length}",
             f"-DBUFFER_PAGES={buffer_pages}", "-DPENDING_ENTRIES=1024", "-DPARENT_ENTRIES=65536",
             f"-DAGENT_TGID={agent_tgid}"]
    if ring_buffer:
        flags.append("-DUSE_RINGBUF")
    if have_dup2:
        flags.append("-DHAVE_DUP2")
    return flags
