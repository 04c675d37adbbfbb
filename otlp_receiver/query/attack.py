"""A small ATT&CK lexicon for search: technique ids with their names, tactics, the phrases people use
for them, and the words that typify them in a Linux command line.

Search reads a query through `phrases` ("reverse shell", "persistence via cron") to the techniques it
means, then finds events by the techniques their evidence names (`anomaly_techniques`, the `[T…]` of
`anomaly_reasons`) and by `indicators`: programs, paths and flags in its command line that show the
behaviour even in an event the scoring found unremarkable. Weak indicators (`~`) also turn up in
routine work (`tar`, a web server's name): they count for half. Ancestry indicators (`@`) are looked
for in who ran the command (parent, ancestors, user) instead: a web shell is any command under a web
server.

Entries are general knowledge of how each technique looks on Linux (ATT&CK's own descriptions,
GTFOBins' functions, common tooling), never lines of any test data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

WEAK = 0.5  # the weight of a `~` indicator

# ATT&CK's tactics, each with the words people also use for it.
TACTICS = {
    "reconnaissance": "reconnaissance", "resource development": "resource development",
    "initial access": "initial access; break in; foothold", "execution": "execution; run code",
    "persistence": "persistence; backdoor; survive a reboot", "privilege escalation": "privilege escalation; get root",
    "defense evasion": "defense evasion; evade detection; hide tracks", "credential access": "credential access; "
    "credential theft; steal credentials; credential harvesting; harvest credentials; creds", "discovery": "discovery; "
    "reconnaissance; recon; enumeration; situational awareness; hands-on-keyboard; host recon; look around",
    "lateral movement": "lateral movement; pivoting", "collection": "collection; "
    "gather data", "command and control": "command and control; c2", "exfiltration": "exfiltration; data theft; "
    "data leak", "impact": "impact; destruction; sabotage",
}
# ATT&CK's ids of the tactics above ("TA0010" is exfiltration).
TACTIC_IDS = {"TA0043": "reconnaissance", "TA0042": "resource development", "TA0001": "initial access",
              "TA0002": "execution", "TA0003": "persistence", "TA0004": "privilege escalation",
              "TA0005": "defense evasion", "TA0006": "credential access", "TA0007": "discovery",
              "TA0008": "lateral movement", "TA0009": "collection", "TA0011": "command and control",
              "TA0010": "exfiltration", "TA0040": "impact"}
# British spellings read as the lexicon's American ones.
_SPELLINGS = {"defence": "defense", "behaviour": "behavior", "behaviours": "behaviors", "analyse": "analyze",
              "authorisation": "authorization", "organisation": "organization", "recognise": "recognize",
              "licence": "license", "offence": "offense", "vandalise": "vandalize"}


@dataclass(frozen=True)
class Technique:
    id: str
    name: str
    tactics: tuple[str, ...]
    phrases: tuple[str, ...]
    indicators: tuple[tuple[str, float], ...]  # (text, weight) matched as whole words of a command: any shows it
    ancestry: tuple[tuple[str, float], ...] = ()  # (name, weight) of the parent, an ancestor or the user
    # A behaviour (not an ATT&CK technique itself): one indicator of every group shows it; it stands for
    # the techniques `stands_for`.
    all_of: tuple[tuple[tuple[str, float], ...], ...] = ()
    stands_for: tuple[str, ...] = ()

    @property
    def parent(self) -> str:
        return self.id.split(".")[0]


# (id, name, tactics ";"-separated, phrases ";"-separated, indicators ","-separated, `~` = weak)
_TABLE = (
    # -- execution
    ("T1059", "Command and Scripting Interpreter", "execution",
     "command interpreter; scripting language; inline script; one-liner; run code; code execution",
     "eval,exec(,~-c,~-e"),
    ("T1059.004", "Unix Shell", "execution",
     "unix shell; shell; spawn a shell; shell escape; break out to a shell; interactive shell; command execution; "
     "shell spawned; living off the land; lolbin; gtfobins",
     "/bin/sh,/bin/bash,sh -i,bash -i,pty.spawn,os.system,system(,-exec /bin/sh,!/bin/sh,exec sh,exec bash,"
     "/bin/dash,~sh -c,~bash -c"),
    ("T1059.006", "Python", "execution", "python script; python one-liner; python code",
     "python -c,python3 -c,import os,import socket,import pty,import subprocess"),
    ("T1059.007", "JavaScript", "execution", "javascript; node script", "node -e,require('child_process')"),
    ("T1053.003", "Cron", "execution; persistence; privilege escalation",
     "cron; cron job; scheduled task; scheduled job; periodic job; persistence via cron; crontab entry",
     "crontab,/etc/cron,/var/spool/cron,cron.d,cron.daily,cron.hourly,anacron,/etc/crontab"),
    ("T1609", "Container Administration Command", "execution",
     "run a command in a container; container exec; kubectl exec; docker exec; kubelet api",
     "kubectl exec,docker exec,crictl exec,podman exec,:10250/run,:10250/exec"),
    ("T1204.002", "Malicious File", "execution", "run a downloaded binary; execute a dropped file; user execution; "
     "run a payload", "~./,~chmod +x"),
    ("T1053.002", "At", "execution; persistence", "at job; one-time scheduled job", "atq,atrm,/var/spool/at"),
    ("T1053.006", "Systemd Timers", "execution; persistence", "systemd timer; timer unit; scheduled timer",
     ".timer,--on-calendar,--on-active,systemd-run"),
    # -- persistence
    ("T1543.002", "Systemd Service", "persistence; privilege escalation",
     "systemd service; new service; service unit; persistence via systemd; malicious service; start at boot; "
     "start again after a reboot; run at startup",
     "/etc/systemd/system,.service,systemctl enable,daemon-reload,/lib/systemd/system"),
    ("T1546.004", "Unix Shell Configuration Modification", "persistence; privilege escalation",
     "bashrc; shell profile; shell startup file; login script; profile modification",
     ".bashrc,.bash_profile,.profile,/etc/profile,.zshrc,/etc/bash.bashrc,.bash_login,/etc/environment"),
    ("T1098.004", "SSH Authorized Keys", "persistence; privilege escalation",
     "ssh key; authorized keys; ssh backdoor; add an ssh key; planted key",
     "authorized_keys,ssh-keygen,~.ssh/"),
    ("T1136.001", "Local Account", "persistence",
     "create account; new user; add a user; backdoor account; account creation; create a user; rogue user; "
     "backdoor user; user created; users created; local user account; uid 0 account; second root account; "
     "append a user to /etc/passwd",
     "useradd,adduser,newusers,~/etc/passwd"),
    ("T1098", "Account Manipulation", "persistence; privilege escalation",
     "account manipulation; change password; add to sudo group; modify account; grant admin rights; "
     "add user to group",
     "usermod,chpasswd,gpasswd,visudo,/etc/sudoers,~passwd,-ag sudo,-ag wheel"),
    ("T1037.004", "RC Scripts", "persistence; privilege escalation", "rc.local; boot script; init script; "
     "startup script", "/etc/rc.local,/etc/init.d,update-rc.d,/etc/rc"),
    ("T1547.006", "Kernel Modules and Extensions", "persistence; privilege escalation",
     "kernel module; load a kernel module; rootkit; lkm; driver",
     "insmod,modprobe,rmmod,.ko,/etc/modules,/lib/modules"),
    ("T1129", "Shared Modules", "execution",
     "shared module; load a shared library; load a library from temp; native library loaded by a script",
     "ctypes,cdll,dlopen,loadlibrary"),
    ("T1574.006", "Dynamic Linker Hijacking", "persistence; privilege escalation; defense evasion",
     "ld preload; library hijacking; shared library injection; preload a library",
     "ld_preload,/etc/ld.so.preload,ld.so.conf,ld_library_path"),
    ("T1505.003", "Web Shell", "persistence",
     "web shell; webshell; shell under a web server; web server spawning a shell; backdoor in the web root; "
     "commands run by the web server",
     "/var/www,.php,.jsp,cmd=,shell.php,~@php-fpm,~@nginx,~@apache2,~@httpd,~@www-data,~@fcgiwrap,~@.cgi,~@tomcat,"
     "~@lighttpd,~@uwsgi,~@gunicorn"),
    ("T1556.003", "Pluggable Authentication Modules", "credential access; defense evasion; persistence",
     "pam backdoor; pluggable authentication module; authentication backdoor", "/etc/pam.d,pam_unix,pam_exec"),
    ("T1546.017", "Udev Rules", "persistence; privilege escalation", "udev rules; udev persistence",
     "/etc/udev/rules.d,/lib/udev/rules.d,run+="),
    ("T1546", "Event Triggered Execution", "persistence; privilege escalation",
     "event triggered execution; udev rule; motd script; trap command; git hook; git config hook",
     "/etc/udev/rules.d,update-motd.d,trap,core.fsmonitor,core.hookspath"),
    ("T1546.016", "Installer Packages", "persistence; privilege escalation",
     "package manager hook; apt hook; malicious package; install script; postinstall",
     "apt.conf.d,pre-invoke,post-invoke,dpkg::post-invoke,preinstall,postinstall"),
    ("T1546.018", "Python Startup Hooks", "persistence; privilege escalation",
     "python startup hook; pth file; sitecustomize", ".pth,sitecustomize,usercustomize"),
    ("T1098.006", "Additional Container Cluster Roles", "persistence; privilege escalation",
     "cluster admin; cluster role binding; grant cluster-admin; kubernetes role", "clusterrolebinding,cluster-admin,"
     "rolebinding"),
    ("T1547.013", "XDG Autostart Entries", "persistence", "autostart entry; desktop autostart",
     "/etc/xdg/autostart,.config/autostart"),
    ("T1554", "Compromise Host Software Binary", "persistence",
     "replace a system binary; trojanized binary; backdoored binary", "~/usr/bin/,~/usr/sbin/,~/bin/"),
    ("T1078", "Valid Accounts", "initial access; persistence; privilege escalation; defense evasion",
     "valid account; stolen credentials; login as another user; switch user", "su -,runuser,sshpass,~su"),
    # -- privilege escalation
    ("T1548", "Abuse Elevation Control Mechanism", "privilege escalation; defense evasion",
     "privilege escalation; privesc; priv esc; become root; elevate privileges; get root; root shell; gain root",
     "sudo,pkexec,doas,~su"),
    ("T1548.003", "Sudo and Sudo Caching", "privilege escalation; defense evasion",
     "sudo; privilege escalation through sudo; sudo abuse; run as root; sudo shell; sudo rule; sudoers; "
     "sudo rights; sudo privileges; root through sudo",
     "sudo,/etc/sudoers,sudo -l,sudo -u,sudo -s,sudo su"),
    ("T1548.001", "Setuid and Setgid", "privilege escalation; defense evasion",
     "setuid; suid binary; set user id; setgid; suid shell; privilege escalation via setuid; setuid bit; "
     "capabilities; file capabilities; setcap; suid root; runs as its owner; setuid copy of a shell",
     "chmod u+s,chmod +s,chmod g+s,chmod 4755,chmod 4777,chmod 2755,-perm -4000,-perm -u=s,-perm /4000,bash -p,"
     "~-p"),
    ("T1068", "Exploitation for Privilege Escalation", "privilege escalation",
     "kernel exploit; local exploit; exploit a vulnerability; privilege escalation exploit; lpe; local privesc",
     "exploit,dirtycow,pwnkit,linpeas,les.sh,linux-exploit-suggester,~gcc"),
    ("T1611", "Escape to Host", "privilege escalation", "container escape; docker socket; container breakout",
     "docker.sock,nsenter,--privileged,--pid=host,chroot /host,~chroot,release_agent"),
    ("T1055", "Process Injection", "defense evasion; privilege escalation",
     "process injection; inject into a process; ptrace injection; memory injection",
     "ptrace,gdb -p,gdb --pid,/proc/*/mem,process_vm_writev"),
    # -- defense evasion
    ("T1070", "Indicator Removal", "defense evasion", "cover tracks; remove indicators; anti-forensics; "
     "remove evidence", "shred,wipe,srm"),
    ("T1070.002", "Clear Linux or Mac System Logs", "defense evasion",
     "log tampering; clear logs; delete logs; wipe logs; tamper with logs; erase the audit trail; truncate logs; "
     "log deletion",
     "/var/log,auth.log,syslog,wtmp,btmp,lastlog,utmp,journalctl --vacuum,journalctl --rotate,messages,"
     "secure,~shred,~truncate"),
    ("T1070.003", "Clear Command History", "defense evasion",
     "clear history; shell history; delete bash history; history tampering; disable history; hide what was typed; "
     "erase the commands typed",
     ".bash_history,history -c,histfile,histsize=0,histfilesize=0,.zsh_history,set +o history"),
    ("T1070.004", "File Deletion", "defense evasion", "delete files; remove a file; secure delete; wipe a file; "
     "self-deletion", "shred,srm,~rm,~unlink"),
    ("T1070.006", "Timestomp", "defense evasion", "timestomp; change timestamps; fake file times; forge mtime; "
     "backdate a file; change file dates; make files look old",
     "touch -t,touch -r,touch -d,touch --date,touch --reference,set_inode_field,crtime"),
    ("T1562.001", "Disable or Modify Tools", "defense evasion",
     "disable security tools; stop antivirus; kill edr; disable selinux; disable apparmor; stop monitoring; "
     "stop the security agent; impair defenses",
     "setenforce 0,apparmor,aa-disable,auditd,falco,osquery,wazuh,clamav,~systemctl stop,~systemctl disable,"
     "~service stop,~kill -9"),
    ("T1562.004", "Disable or Modify System Firewall", "defense evasion",
     "disable firewall; flush firewall rules; open a firewall port; firewall change",
     "iptables -f,iptables --flush,ufw disable,nft flush,firewall-cmd,~iptables,~ufw,~nft"),
    ("T1562.012", "Disable or Modify Linux Audit System", "defense evasion",
     "disable auditing; delete audit rules; stop auditd; audit tampering", "auditctl -d,auditctl -e 0,auditctl,"
     "/etc/audit"),
    ("T1222.002", "Linux File and Directory Permissions Modification", "defense evasion",
     "change permissions; file permissions; make executable; world writable; change owner; immutable file",
     "chmod,chown,chattr,setfacl,chmod 777,chmod +x,chgrp"),
    ("T1036.005", "Match Legitimate Name or Location", "defense evasion",
     "masquerading; fake process name; hidden binary; disguised as a system process; binary in tmp; "
     "masquerade as a kernel thread; pretending to be a system binary; impersonate a system process; "
     "fake daemon; fake sshd; lookalike binary; impostor process; system name from an odd path",
     "/tmp/.,/dev/shm/,/var/tmp/.,kworker,kthreadd,ksoftirqd,[kworker,~/tmp/"),
    ("T1036.004", "Masquerade Task or Service", "defense evasion",
     "fake service name; masquerade as a service; process named like a kernel thread; pretend to be a daemon",
     "kworker,kthreadd,ksoftirqd,kdevtmpfsi,[kworker,systemd-journal,~kswapd"),
    ("T1036.003", "Rename System Utilities", "defense evasion",
     "renamed system utility; copied binary; rename a tool", "cp /bin/,cp /usr/bin/,cp /sbin/"),
    ("T1140", "Deobfuscate/Decode Files or Information", "defense evasion",
     "decode; deobfuscate; base64 decode; encoded payload; decode a payload",
     "base64 -d,base64 --decode,xxd -r,openssl enc -d,openssl base64 -d,uudecode,~rev"),
    ("T1027", "Obfuscated Files or Information", "defense evasion",
     "obfuscation; obfuscated command; encoded command; packed binary", "base64,upx,~xxd,~gzip -c"),
    ("T1027.002", "Software Packing", "defense evasion", "packed binary; upx packing; software packing",
     "upx,--ultra-brute"),
    ("T1562.006", "Indicator Blocking", "defense evasion",
     "indicator blocking; block logging; stop logs from being sent; silence the logs",
     "auditctl -e 0,/etc/rsyslog.conf,/etc/rsyslog.d,journald.conf,storage=none,~rsyslog"),
    ("T1564.001", "Hidden Files and Directories", "defense evasion", "hidden file; hide files; hidden directory; "
     "dot file", "/tmp/.,/dev/shm/.,mkdir .,~/."),
    ("T1564", "Hide Artifacts", "defense evasion", "hide a process; hide artifacts; conceal activity; hide from ps",
     "mount -o bind /proc,mount --bind /proc,hidepid"),
    ("T1562.003", "Impair Command History Logging", "defense evasion",
     "disable history logging; stop recording history; unset histfile; no history",
     "unset histfile,histfile=/dev/null,histsize=0,histcontrol=ignorespace,set +o history"),
    ("T1014", "Rootkit", "defense evasion", "rootkit; hide processes; kernel rootkit",
     "diamorphine,reptile,/etc/ld.so.preload,~insmod"),
    ("T1553.004", "Install Root Certificate", "defense evasion",
     "install a root certificate; trusted certificate authority; add a ca certificate",
     "update-ca-certificates,ca-certificates,ca-trust,/usr/local/share/ca-certificates"),
    ("T1497", "Virtualization/Sandbox Evasion", "defense evasion; discovery",
     "sandbox evasion; detect a virtual machine; vm detection", "systemd-detect-virt,dmidecode,/sys/class/dmi,"
     "virt-what"),
    # -- credential access
    ("T1003", "OS Credential Dumping", "credential access",
     "credential dumping; dump credentials; password dump; steal passwords; mimikatz; dump creds",
     "mimipenguin,lazagne,unshadow,"
     "/etc/shadow"),
    ("T1003.008", "/etc/passwd and /etc/shadow", "credential access",
     "password hashes; dump password hashes; read the shadow file; steal password hashes; crack hashes",
     "/etc/shadow,/etc/gshadow,unshadow,/etc/security/opasswd,shadow-"),
    ("T1003.007", "Proc Filesystem", "credential access",
     "dump process memory; memory dump; read process memory; credentials from memory",
     "/proc/*/mem,/mem,/maps,gcore,mimipenguin,gdb -p,~/proc/"),
    ("T1552", "Unsecured Credentials", "credential access",
     "credentials; creds; secrets; unsecured credentials; environment secrets; steal secrets; credential theft; "
     "credential access",
     "/environ,printenv,~env,secret,token,password,passwd,credentials"),
    ("T1552.001", "Credentials In Files", "credential access",
     "credentials in files; passwords in files; search for passwords; api keys; config file passwords; "
     "credential files",
     "password,passwd,.env,.netrc,.pgpass,.my.cnf,wp-config.php,credentials,.git-credentials,.aws/credentials,"
     "secret,api_key,apikey,.npmrc,.pypirc,.htpasswd,.vault-token,kubeconfig,.kube/config,.docker/config.json"),
    ("T1552.003", "Bash History", "credential access", "bash history; read shell history; commands history",
     ".bash_history,.zsh_history,.mysql_history,.psql_history,.python_history"),
    ("T1552.004", "Private Keys", "credential access",
     "private key; ssh key theft; steal keys; certificate keys; tls key",
     "id_rsa,id_ed25519,id_ecdsa,id_dsa,.pem,.key,ssh_host_,/etc/ssl/private,.ssh/,~.p12,~.pfx"),
    ("T1552.005", "Cloud Instance Metadata API", "credential access",
     "cloud metadata; instance metadata; metadata service; imds", "169.254.169.254,metadata.google.internal,"
     "/latest/meta-data,/computemetadata"),
    ("T1110.002", "Password Cracking", "credential access", "password cracking; crack hashes; crack the shadow file",
     "john,hashcat,--wordlist,unshadow,rockyou"),
    ("T1110.003", "Password Spraying", "credential access", "password spraying; spray passwords; credential spraying",
     "crackmapexec,kerbrute,sprayhound,hydra -l,netexec"),
    ("T1555.006", "Cloud Secrets Management Stores", "credential access",
     "cloud secrets; secrets manager; parameter store; vault secrets; read secrets from the cloud",
     "secretsmanager,get-secret-value,get-parameter,--with-decryption,vault kv,vault read,gcloud secrets,keyvault"),
    ("T1552.007", "Container API", "credential access",
     "kubernetes secrets; cluster secrets; container api secrets; read kubernetes secrets",
     "kubectl get secret,/var/run/secrets/kubernetes.io,serviceaccount/token,docker inspect"),
    ("T1110", "Brute Force", "credential access",
     "brute force; password guessing; password cracking; crack passwords; password spraying; credential stuffing",
     "hydra,john,hashcat,medusa,ncrack,patator,crackmapexec"),
    ("T1056.001", "Keylogging", "collection; credential access", "keylogger; keystroke logging; capture keystrokes",
     "logkeys,/dev/input,xinput,pam_tty_audit,~strace"),
    ("T1040", "Network Sniffing", "credential access; discovery",
     "sniff traffic; packet capture; network sniffing; capture network traffic; network sniffer",
     "tcpdump,tshark,wireshark,ettercap,dsniff,ngrep,~-i any"),
    ("T1557", "Adversary-in-the-Middle", "credential access; collection",
     "man in the middle; arp spoofing; mitm; intercept traffic", "arpspoof,ettercap,bettercap,mitmproxy,responder"),
    ("T1555", "Credentials from Password Stores", "credential access",
     "password store; keyring; browser passwords; saved passwords",
     "secret-tool,keyring,.password-store,gnome-keyring,.mozilla/firefox,logins.json,key4.db"),
    ("T1558", "Steal or Forge Kerberos Tickets", "credential access", "kerberos tickets; keytab; ticket cache; "
     "pass the ticket", "klist,kinit,.keytab,/tmp/krb5cc,krb5cc_,getuserspns,ticketer"),
    # -- discovery
    ("T1082", "System Information Discovery", "discovery",
     "system information; reconnaissance; recon; discovery; enumerate the system; host enumeration; "
     "fingerprint the host; os version; situational awareness; kernel version; linux version; os release; "
     "distribution version; distro; cpu architecture; hardware details; system details; learn about the system; "
     "operating system details",
     "uname,hostnamectl,/etc/os-release,lsb_release,/proc/version,/etc/issue,lscpu,dmidecode,~hostname,~df,"
     "~free,~uptime"),
    ("T1033", "System Owner/User Discovery", "discovery",
     "who am i; current user; user discovery; which user", "whoami,id,who,~last,~users,~w"),
    ("T1087.001", "Local Account Discovery", "discovery",
     "list users; account discovery; enumerate users; user accounts", "/etc/passwd,getent passwd,lastlog,compgen -u"),
    ("T1069.001", "Local Groups", "discovery", "group discovery; list groups; sudo rights; group membership",
     "/etc/group,getent group,groups,sudo -l"),
    ("T1057", "Process Discovery", "discovery", "list processes; process discovery; running processes",
     "ps,pgrep,pstree,~top,~/proc"),
    ("T1049", "System Network Connections Discovery", "discovery",
     "network connections; open connections; listening ports; established connections",
     "netstat,ss,lsof -i,~lsof"),
    ("T1016", "System Network Configuration Discovery", "discovery",
     "network configuration; network config; net config; ip addresses; network interfaces; routing table; "
     "dns servers",
     "ifconfig,ip a,ip addr,ip route,ip link,route -n,arp -a,/etc/resolv.conf,~/etc/hosts,~arp"),
    ("T1018", "Remote System Discovery", "discovery",
     "ping sweep; host discovery; find other hosts; remote system discovery; network sweep; live hosts",
     "fping,arp-scan,nmap -sn,nbtscan,netdiscover,~ping,~arp -a"),
    ("T1046", "Network Service Discovery", "discovery",
     "port scan; network scan; service discovery; scan the network; host discovery",
     "nmap,masscan,zmap,nc -z,rustscan,~nc -v"),
    ("T1083", "File and Directory Discovery", "discovery",
     "file discovery; search for files; find files; directory listing; browse the file system",
     "find,locate,~ls -la,~ls -al,~tree"),
    ("T1518.001", "Security Software Discovery", "discovery",
     "security software; check for antivirus; detect edr; find security tools; av enumeration; edr enumeration",
     "falco,auditd,osquery,clamav,aide,wazuh,~apparmor_status,~sestatus"),
    ("T1518", "Software Discovery", "discovery", "installed software; list packages; software inventory",
     "dpkg -l,rpm -qa,apt list,pip list,~dpkg"),
    ("T1007", "System Service Discovery", "discovery", "list services; service discovery; running services",
     "systemctl list-units,service --status-all,systemctl status,~systemctl"),
    ("T1124", "System Time Discovery", "discovery", "system time; time zone", "timedatectl,~date"),
    ("T1613", "Container and Resource Discovery", "discovery",
     "container discovery; list containers; kubernetes discovery", "docker ps,kubectl get,crictl,docker inspect"),
    ("T1201", "Password Policy Discovery", "discovery", "password policy", "/etc/login.defs,chage -l,pwquality"),
    # -- lateral movement
    ("T1072", "Software Deployment Tools", "execution; lateral movement",
     "software deployment tools; ansible; salt; puppet; run commands on many hosts; fleet-wide command",
     "ansible,ansible-playbook,salt-ssh,salt ,puppet,chef-client,pssh,parallel-ssh,pdsh"),
    ("T1021.004", "SSH", "lateral movement",
     "ssh; lateral movement; remote login; pivot to another host; move to another host; move to other hosts; "
     "hop between hosts",
     "ssh,sshpass,ssh -i,~scp"),
    ("T1570", "Lateral Tool Transfer", "lateral movement", "copy tools to another host; lateral tool transfer",
     "scp,rsync,~sftp"),
    ("T1563.001", "SSH Hijacking", "lateral movement", "ssh agent hijacking; hijack an ssh session",
     "ssh_auth_sock,ssh-add -l"),
    # -- collection
    ("T1560.001", "Archive via Utility", "collection",
     "archive data; compress files; collect and compress; staging archive; zip up data; pack files",
     "tar czf,tar cf,tar -c,zip -r,7z a,rar a,~tar,~zip,~gzip,~7z,~bzip2,~xz"),
    ("T1005", "Data from Local System", "collection", "collect files; steal data; data from the local system; "
     "gather documents", "~cat,~cp -r,~find / -name"),
    ("T1074.001", "Local Data Staging", "collection", "staging data; stage files for exfiltration",
     "~/tmp/,~/dev/shm/,~/var/tmp/"),
    ("T1113", "Screen Capture", "collection", "screenshot; screen capture", "xwd,import -window root,scrot,"
     "gnome-screenshot"),
    ("T1123", "Audio Capture", "collection", "audio capture; record audio; microphone recording; microphone; eavesdrop",
     "arecord,parecord,pw-record,ffmpeg -f alsa,ffmpeg -f pulse"),
    ("T1125", "Video Capture", "collection", "video capture; webcam; camera", "fswebcam,streamer,ffmpeg -f v4l2"),
    ("T1115", "Clipboard Data", "collection", "clipboard; copy paste data", "xclip,xsel,wl-paste"),
    ("T1580", "Cloud Infrastructure Discovery", "discovery",
     "cloud discovery; enumerate cloud resources; list instances; cloud infrastructure discovery",
     "describe-instances,aws ec2 describe,aws s3 ls,gcloud compute instances list,az vm list,get-caller-identity"),
    # -- command and control
    ("T1105", "Ingress Tool Transfer", "command and control",
     "download; fetch a payload; download a file; pull a file from the internet; download a tool; stage a payload; "
     "lolbin download; download with a lolbin; lolbas; payload download",
     "curl,wget,fetch,tftp,lwp-download,| sh,| bash,http://,https://,ftp://,-o /tmp,-o /dev/shm,~scp"),
    ("T1095", "Non-Application Layer Protocol", "command and control",
     "raw tcp connection; netcat; socket connection; listener; non-application layer protocol; "
     "dev tcp; network device file; bash tcp redirection; connect back",
     "/dev/tcp/,/dev/udp/,nc -e,nc -l,ncat,socat,netcat,-e /bin/sh,-e /bin/bash,socket.socket,fsockopen,"
     "tcpsocket,rhost,rport,lport,exec 5<>,mkfifo,tcp-listen,tcp-connect,tcp:,openssl s_client,~nc"),
    ("T1071.001", "Web Protocols", "command and control", "http c2; beacon; beaconing; command and control over http; "
     "c2 channel; implant calling home; call home", "~curl,~wget,user-agent"),
    ("T1572", "Protocol Tunneling", "command and control",
     "tunnel; port forwarding; ssh tunnel; pivot; tunnelling", "ssh -l,ssh -r,ssh -d,chisel,ngrok,frpc,iodine,"
     "ligolo,dnscat,tcp-listen"),
    ("T1071.004", "DNS", "command and control", "dns c2; dns tunnel; dns beacon; command and control over dns",
     "dnscat,iodine,dig txt,-t txt,-type=txt,~dig,~nslookup"),
    ("T1090", "Proxy", "command and control", "proxy; socks proxy; proxy chain; tor; dynamic port forwarding",
     "proxychains,torsocks,3proxy,microsocks,tor,socks5,ssh -d,dynamicforward"),
    ("T1219", "Remote Access Software", "command and control", "remote access tool; remote desktop; rat; vnc",
     "teamviewer,anydesk,x11vnc,vncserver,rustdesk,meshagent"),
    ("T1573", "Encrypted Channel", "command and control", "encrypted channel; encrypted tunnel; tls connection",
     "openssl s_client,ncat --ssl,socat openssl,stunnel"),
    ("T1102", "Web Service", "command and control", "web service c2; paste site; chat bot c2",
     "pastebin,transfer.sh,discord,telegram,api.github.com,gist"),
    ("T1132.001", "Standard Encoding", "command and control", "encoded c2 traffic", "~base64"),
    # -- exfiltration
    ("T1041", "Exfiltration Over C2 Channel", "exfiltration",
     "data sent out; exfiltration; exfiltrate data; upload data; send data to a remote server; leak data; "
     "data leaves the host; send a file out",
     "curl -d,curl --data,curl -f,curl -t,--upload-file,--data-binary,-d @,-t /,wget --post-file,"
     "wget --post-data,--post-file,~nc,~post"),
    ("T1048", "Exfiltration Over Alternative Protocol", "exfiltration",
     "ftp upload; send a file; upload a file; copy data out; email files out; send by email",
     "scp,ftp,tftp,rsync,~dig,~nslookup,sendmail,mail -s,~smbclient"),
    ("T1048.003", "Exfiltration Over Unencrypted Non-C2 Protocol", "exfiltration",
     "exfiltration over dns; dns exfiltration; icmp exfiltration; exfiltration over ftp; data in dns queries",
     "ping -p,ftp,tftp,~dig,~nslookup"),
    ("T1567", "Exfiltration Over Web Service", "exfiltration",
     "upload to cloud storage; upload to a web service; paste site; cloud exfiltration; file sharing site; "
     "uploaded to a file sharing service",
     "transfer.sh,pastebin,aws s3 cp,gsutil cp,rclone,dropbox,mega,file.io,0x0.st"),
    ("T1567.002", "Exfiltration to Cloud Storage", "exfiltration",
     "exfiltration to cloud storage; upload to s3; upload to a bucket; copy data to cloud storage",
     "aws s3 cp,aws s3 sync,gsutil cp,azcopy,rclone copy,rclone sync,--no-sign-request"),
    ("T1030", "Data Transfer Size Limits", "exfiltration", "split data into chunks", "split -b,~split"),
    # -- impact
    ("T1496", "Resource Hijacking", "impact",
     "crypto miner; cryptocurrency mining; coin miner; cryptojacking; mining; resource hijacking; miner; monero",
     "xmrig,minerd,cpuminer,stratum+tcp,stratum,nicehash,monero,xmr,cgminer,ethminer,--donate-level,nanopool,"
     "minexmr,supportxmr,moneroocean,~pool"),
    ("T1485", "Data Destruction", "impact", "destroy data; wipe the disk; delete everything; data destruction",
     "rm -rf /,shred,dd if=/dev/zero,dd if=/dev/urandom,mkfs,wipefs"),
    ("T1486", "Data Encrypted for Impact", "impact", "ransomware; encrypt files; encrypt data for ransom; ransom note",
     "openssl enc,gpg -c,gpg --symmetric,ccrypt,.encrypted,ransom,~gpg"),
    ("T1489", "Service Stop", "impact", "stop services; kill services; stop the database",
     "systemctl stop,service stop,killall,pkill"),
    ("T1490", "Inhibit System Recovery", "impact", "delete backups; remove snapshots; destroy backups",
     "lvremove,zfs destroy,btrfs subvolume delete,rm -rf /backup"),
    ("T1529", "System Shutdown/Reboot", "impact", "shutdown; reboot; power off", "shutdown,reboot,halt,poweroff,"
     "init 0,init 6"),
    ("T1531", "Account Access Removal", "impact", "lock out users; delete an account; remove account access",
     "userdel,deluser,passwd -l,usermod -l,usermod --lock"),
    ("T1499", "Endpoint Denial of Service", "impact", "denial of service; fork bomb; resource exhaustion",
     ":(){,stress,hping3,slowloris"),
    ("T1561", "Disk Wipe", "impact", "wipe a disk; overwrite the disk", "of=/dev/sd,of=/dev/nvme,wipefs,"
     "shred /dev/,blkdiscard"),
    ("T1561.002", "Disk Structure Wipe", "impact", "wipe the partition table; destroy the boot sector; erase the "
     "mbr; make the machine unbootable", "sgdisk,--zap-all,wipefs,sfdisk --delete,of=/dev/sda bs=512"),
    ("T1491.001", "Internal Defacement", "impact", "defacement; deface a website; replace the home page; "
     "vandalize the site", "/var/www/html/index.html,/var/www/html/index.php,hacked by,owned by"),
    # -- initial access
    ("T1195.002", "Compromise Software Supply Chain", "initial access",
     "supply chain compromise; supply chain attack; poisoned dependency; compromised dependency; "
     "dependency confusion; typosquatting", "~@npm,~@pip,~@yarn,~@composer,postinstall,preinstall"),
    ("T1620", "Reflective Code Loading", "defense evasion",
     "fileless execution; reflective loading; run from memory; in-memory execution", "memfd,fexecve,/proc/self/fd/"),
    ("T1190", "Exploit Public-Facing Application", "initial access",
     "exploit a web application; command injection; remote code execution; rce; web exploit; injection",
     "~@php-fpm,~@nginx,~@apache2,~@httpd,~@www-data,~@fcgiwrap,~@.cgi,~@tomcat,~@java,~@node,~@lighttpd,~@uwsgi,"
     "~@gunicorn"),
)

# Behaviours people name that are two techniques at once: (id, name, ATT&CK ids, tactics, phrases,
# indicator groups " && "-separated, each ","-separated).
_BEHAVIOURS = (
    ("reverse-shell", "Reverse or bind shell", "T1059.004 T1095", "execution; command and control",
     "reverse shell; bind shell; remote shell; connect-back shell; shell over the network; "
     "interactive shell for an attacker; revshell; rev shell; shell callback",
     "/dev/tcp/,/dev/udp/,socket,fsockopen,tcpsocket,nc,ncat,netcat,socat,tcp-connect,tcp-listen,tcp:,udp:,"
     "connect(,s_client,telnet,rhost,lport,ztcp,inet && /bin/sh,/bin/bash,/bin/dash,/bin/zsh,sh -i,bash -i,exec,"
     "popen,pty,spawn,subprocess,system(,dup2,0<&,<&1,>&,~sh,~bash"),
    ("download-execute", "Download and execute", "T1105 T1059", "command and control; execution",
     "download and execute; download and run; dropper; curl piped to bash; fetch and run a script; "
     "remote script execution; stage and run a payload",
     "curl,wget,fetch,http://,https://,ftp://,tftp,lwp-download,urlopen,uri.open,download(,urllib,requests.get "
     "&& | sh,| bash,|sh,|bash,| python,chmod +x,chmod 755,chmod 777,eval,exec,bash -s,sh -s,source,| perl,"
     "~sh -c,~bash -c,~./"),
)


def _indicator(text: str) -> tuple[str, float]:
    return (text[1:], WEAK) if text.startswith("~") else (text, 1.0)


def _split(text: str, separator: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(separator) if part.strip())


def _indicators(text: str, ancestry: bool = False) -> tuple[tuple[str, float], ...]:
    found = (_indicator(part.strip()) for part in text.split(",") if part.strip())
    return tuple((name.removeprefix("@"), weight) for name, weight in found if name.startswith("@") == ancestry)


TECHNIQUES: dict[str, Technique] = {
    row[0]: Technique(row[0], row[1], _split(row[2], ";"), _split(row[3], ";"), _indicators(row[4]),
                      _indicators(row[4], ancestry=True))
    for row in _TABLE
}
TECHNIQUES.update({
    row[0]: Technique(row[0], row[1], _split(row[3], ";"), _split(row[4], ";"), (), (),
                      tuple(_indicators(group) for group in row[5].split(" && ")), tuple(row[2].split()))
    for row in _BEHAVIOURS
})

_STEMMER = snowballstemmer.stemmer("english")
_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset((
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "by", "via", "through", "with", "from", "for", "into",
    "onto", "over", "as", "at", "is", "are", "was", "be", "been", "being", "it", "its", "this", "that", "these",
    "those", "than", "then", "any", "all", "some", "my", "our", "your", "their", "his", "her", "who", "what",
    "which", "when", "where", "how", "why", "do", "does", "did", "done", "has", "have", "had", "not", "no", "using",
    "use", "used", "show", "find", "me", "events", "event", "process", "processes", "command", "commands",
    "something", "someone",
))


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def words(text: str) -> list[str]:
    """The stemmed words of plain text, without stop words, in the lexicon's spelling."""
    return [stem(_SPELLINGS.get(word, word)) for word in _WORD.findall(text.lower()) if word not in STOPWORDS]


_TACTIC_ID = re.compile(r"\bTA00\d\d\b", re.IGNORECASE)


def tactic_names(text: str) -> str:
    """`text` with ATT&CK tactic ids ("TA0010") written as the tactics' names ("exfiltration")."""
    return _TACTIC_ID.sub(lambda m: TACTIC_IDS.get(m.group(0).upper(), m.group(0)), text)


def technique_ids(texts: Iterable[str]) -> list[str]:
    """ATT&CK ids named in text (`anomaly_reasons` end with `[T1105]`), in order, once each."""
    found: dict[str, None] = {}
    for text in texts:
        for match in _TECHNIQUE_ID.findall(text):
            found.setdefault(match.upper(), None)
    return list(found)


_TECHNIQUE_ID = re.compile(r"\b(T\d{4}(?:\.\d{3})?)\b", re.IGNORECASE)


def without_technique(reason: str) -> str:
    """A reason without its trailing `[T…]` (the technique is shown on its own)."""
    return re.sub(r"\s*\[T\d{4}(?:\.\d{3})?\]\s*$", "", reason)


def describe(technique_id: str) -> dict[str, object]:
    """What the page shows for a technique (or behaviour) id; unknown ids keep their id as name."""
    technique = TECHNIQUES.get(technique_id) or TECHNIQUES.get(technique_id.split(".")[0])
    if technique is None:
        return {"id": technique_id, "name": technique_id, "tactics": []}
    name = technique.name if technique.id == technique_id else f"{technique.name} ({technique_id})"
    if technique.stands_for:
        name = f"{name} ({', '.join(technique.stands_for)})"
    return {"id": technique_id, "name": name, "tactics": list(technique.tactics)}
