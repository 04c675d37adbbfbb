"""The one vocabulary of programs the evidence rules talk about: shells, servers, downloaders, ..."""

from __future__ import annotations

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "ash", "busybox"})
INTERPRETERS = frozenset({"python", "perl", "ruby", "php", "node", "nodejs", "lua", "luajit", "julia", "Rscript", "R",
                          "jjs", "jrunscript", "tclsh", "wish", "expect", "gjs", "pwsh", "osascript", "irb"})
# Dedicated web/app servers: a shell below one runs what a request told it to.
WEB_SERVERS = frozenset({
    "nginx", "apache2", "httpd", "lighttpd", "caddy", "php-fpm", "java", "node", "tomcat",
    "gunicorn", "uwsgi", "uvicorn", "puma", "unicorn", "passenger", "httpd-prefork",
})
# Runtimes that host app servers but also run every other script on a host: weaker evidence.
SCRIPT_RUNTIMES = frozenset({"python", "ruby"})
# CGI gateways exist to start programs for requests: their shells are routine, their lineage is not.
CGI_GATEWAYS = frozenset({"fcgiwrap", "spawn-fcgi", "php-cgi", "suexec", "cgi-fcgi", "multiwatch"})
DATABASES = frozenset({"postgres", "postmaster", "mysqld", "mariadbd", "redis-server", "mongod", "sqlservr"})
ELEVATORS = frozenset({"sudo", "su", "doas", "pkexec", "run0"})
# Flags that give a shell or interpreter its code on the command line (python -c, perl -e, php -r, ...).
INLINE_CODE_FLAGS = frozenset({"-c", "-e", "-E", "-r", "--eval", "--exec", "-x", "--execute", "--command"})
# Programs that run another program given as their arguments: judge what they run.
WRAPPERS = frozenset({"env", "nohup", "timeout", "nice", "ionice", "setsid", "stdbuf", "chrt", "taskset", "time",
                      "xargs", "exec", "command", "builtin", "unbuffer", "flock", "runuser", "chroot", "nsenter",
                      "unshare", "strace", "ltrace", "watch", "script", "systemd-run", "ld.so", "busybox", *ELEVATORS})
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "tftp", "atftp", "ftp", "lwp-download", "lwp-request",
                         "GET", "http", "httpie", "axel", "lftp"})
NETCATS = frozenset({"nc", "ncat", "netcat", "nc.traditional", "nc.openbsd"})
# Clients that hand on what a peer sends, unframed (openssl's s_client too, told by its argument).
RAW_CLIENTS = NETCATS | {"socat", "telnet"}
SENDERS = frozenset({"curl", "wget", "nc", "ncat", "netcat", "socat", "ssh", "openssl", "telnet", "ftp", "tftp",
                     "sftp"})
ENCODERS = frozenset({"base64", "base32", "basenc", "xxd", "gzip", "bzip2", "xz", "zstd", "openssl", "gpg", "tar",
                      "zip", "uuencode"})
# Runs as root by design: an effective uid of 0 under another real uid is what these do.
SETUID_HELPERS = frozenset({"sudo", "su", "passwd", "chsh", "chfn", "newgrp", "gpasswd", "mount", "umount", "ping",
                            "pkexec", "fusermount", "fusermount3", "ssh-keysign", "Xorg", "at", "crontab", "expiry",
                            "chage", "unix_chkpwd", "polkit-agent-helper-1", "sg", "doas", "run0", "traceroute6",
                            "dbus-daemon-launch-helper", "ntfs-3g", "pppd", "sudoedit"})
