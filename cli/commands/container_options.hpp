// The options `run` and `create` share: how a container is made, as docker spells them.
#pragma once

#include "../command.hpp"

namespace hutch::cli {

inline void add_container_options(po::options_description& o, RunOptions& r) {
    o.add_options()("rm", po::bool_switch(&r.remove), "remove the container when it exits")(
        "interactive,i", po::bool_switch(&r.interactive), "keep standard input open")(
        "tty,t", po::bool_switch(&r.tty), "use the caller's terminal (TERM is set)")(
        "env,e", po::value(&r.env)->composing(), "set an environment variable (K=V, or K to take yours)")(
        "env-file", po::value(&r.env_files)->composing(), "read environment variables from a file")(
        "workdir,w", po::value(&r.workdir), "working directory inside the container (made if missing)")(
        "user,u", po::value(&r.user), "user NAME|UID[:GROUP|GID] to run as")(
        "hostname,h", po::value(&r.hostname), "the container's hostname")(
        "entrypoint", po::value<std::string>()->notifier([&r](const std::string& v) { r.entrypoint = v; }), "override the image's entrypoint (a string or a JSON array)")(
        "network,net", po::value(&r.networks)->composing(),
        "slirp (default; slirp:allow_host_loopback=true,mtu=N,enable_ipv6=false), host, none, or a user network (repeatable)")(
        "network-alias", po::value(&r.network_aliases)->composing(), "another name for the container on its user networks")(
        "publish,p", po::value(&r.publish)->composing(), "publish [IP:][HOSTPORT:]PORT[/tcp|udp] (ranges: 8000-8002:80-82)")(
        "publish-all,P", po::bool_switch(&r.publish_all), "publish every EXPOSEd port on a free host port")(
        "name", po::value(&r.name), "a name for the container")(
        "read-only", po::bool_switch(&r.read_only), "mount the root filesystem read-only")(
        "read-only-tmpfs", po::value<bool>()->implicit_value(true)->notifier([&r](bool v) { r.read_only_tmpfs = v; }),
        "with --read-only, tmpfs on /tmp, /var/tmp and /run (default true)")(
        "volume,v", po::value(&r.volumes)->composing(), "bind HOST-DIR:DIR[:ro], or a named volume NAME:DIR[:ro]")(
        "mount", po::value(&r.mounts)->composing(), "type=bind|volume|tmpfs,source=...,target=...[,readonly]")(
        "tmpfs", po::value(&r.tmpfs)->composing(), "a tmpfs on DIR[:size=64m,mode=1777,...]")(
        "device", po::value(&r.devices)->composing(), "pass a host device HOST[:CONTAINER[:rwm]]")(
        "shm-size", po::value(&r.shm_size), "size of /dev/shm (default 64m)")(
        "cap-add", po::value(&r.cap_add)->composing(), "add a capability (or ALL)")(
        "cap-drop", po::value(&r.cap_drop)->composing(), "drop a capability (or ALL)")(
        "privileged", po::bool_switch(&r.privileged), "every capability, no seccomp, nothing masked")(
        "security-opt", po::value(&r.security_opts)->composing(),
        "no-new-privileges, seccomp=unconfined|PROFILE.json, mask=PATHS, unmask=PATHS")(
        "ulimit", po::value(&r.ulimits)->composing(), "a resource limit NAME=SOFT[:HARD] (nofile=1024)")(
        "group-add", po::value(&r.group_add)->composing(), "an additional group (name or number)")(
        "userns", po::value(&r.userns), "host (hutch's namespace) or keep-id[:uid=U,gid=G]")(
        "uidmap", po::value(&r.uidmap)->composing(), "a user namespace uid map CONTAINER:HOST:SIZE")(
        "gidmap", po::value(&r.gidmap)->composing(), "a user namespace gid map CONTAINER:HOST:SIZE")(
        "pid", po::value(&r.pid), "PID namespace: private or host")(
        "ipc", po::value(&r.ipc), "IPC namespace: private or host")(
        "uts", po::value(&r.uts), "UTS namespace: private or host")(
        "init", po::bool_switch(&r.init), "run an init as PID 1 that forwards signals and reaps zombies")(
        "env-host", po::bool_switch(&r.env_host), "pass your whole environment in")(
        "stop-signal", po::value(&r.stop_signal), "the signal that stops the container (default SIGTERM)")(
        "add-host", po::value(&r.add_hosts)->composing(), "add NAME:IP to /etc/hosts")(
        "dns", po::value(&r.dns)->composing(), "a nameserver for /etc/resolv.conf")(
        "dns-search", po::value(&r.dns_search)->composing(), "a search domain for /etc/resolv.conf")(
        "dns-option", po::value(&r.dns_options)->composing(), "an option for /etc/resolv.conf")(
        "oom-score-adj", po::value<int>()->notifier([&r](int v) { r.oom_score_adj = v; }), "the OOM killer's score adjustment")(
        "memory,m", po::value(&r.memory), "memory limit (e.g. 512m)")(
        "memory-swap", po::value(&r.memory_swap), "memory plus swap limit (-1: unlimited swap)")(
        "cpus", po::value(&r.cpus), "number of CPUs (e.g. 1.5)")(
        "cpu-shares,c", po::value(&r.cpu_shares), "relative CPU weight (default 1024)")(
        "cpuset-cpus", po::value(&r.cpuset_cpus), "CPUs to run on (0-1, 0,2)")(
        "pids-limit", po::value(&r.pids_limit), "most processes at once (-1: unlimited)")(
        "log-driver", po::value(&r.log_driver), "k8s-file (default), json-file or none")(
        "log-opt", po::value(&r.log_opts)->composing(), "max-size=10m, max-file=3, path=FILE")(
        "restart", po::value(&r.restart), "no, on-failure[:N], always or unless-stopped (carried out by the monitor)")(
        "health-cmd", po::value(&r.health_cmd), "the command that checks health (a shell command, or a JSON array)")(
        "health-interval", po::value(&r.health_interval), "time between checks (default 30s)")(
        "health-timeout", po::value(&r.health_timeout), "time a check may take (default 30s)")(
        "health-retries", po::value<int>()->notifier([&r](int v) { r.health_retries = v; }), "failures in a row that make it unhealthy (default 3)")(
        "health-start-period", po::value(&r.health_start_period), "time to start before failures count (default 0s)")(
        "health-on-failure", po::value(&r.health_on_failure), "when unhealthy: none, kill, restart or stop")(
        "no-healthcheck", po::bool_switch(&r.no_healthcheck), "disable the image's HEALTHCHECK")(
        "label,l", po::value(&r.labels)->composing(), "a label KEY=VALUE")(
        "label-file", po::value(&r.label_files)->composing(), "read labels from a file (KEY=VALUE lines)")(
        "annotation", po::value(&r.annotations)->composing(), "an annotation KEY=VALUE")(
        "stop-timeout", po::value<int>()->notifier([&r](int v) { r.stop_timeout = v; }), "seconds \"stop\" waits before SIGKILL (default 10)")(
        "detach-keys", po::value(&r.detach_keys), "the keys that detach (default ctrl-p,ctrl-q)");
}

}  // namespace hutch::cli
