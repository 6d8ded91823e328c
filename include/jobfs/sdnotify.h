/* sdnotify: tells a service manager how the daemon is doing, as systemd's
 * sd_notify(3) does, without libsystemd.
 *
 * systemd starts a Type=notify service with $NOTIFY_SOCKET naming a datagram
 * socket: a path ("/run/systemd/notify") or, with a leading '@', a name in the
 * abstract namespace. One datagram of newline-separated KEY=VALUE lines says
 * what changed: "READY=1" once the mount is up and requests are served,
 * "STOPPING=1" when shutdown begins, "STATUS=..." free text. Nothing else is
 * needed from systemd, so the same binary runs where it is absent. The
 * module owns no state: it reads the environment on every call.
 */
#pragma once

/* Sends state (e.g. "READY=1") as one datagram to $NOTIFY_SOCKET. Returns 1
 * when sent, 0 when $NOTIFY_SOCKET is unset or empty (nothing to tell), or
 * -errno: -EINVAL for a name that is neither a path nor '@'-abstract or is
 * too long for a socket address, -EAFNOSUPPORT for another address family
 * (systemd's "vsock:"), or what socket(2)/sendto(2) said (-ENOENT,
 * -ECONNREFUSED...). Never blocks: the socket is non-blocking and a full
 * queue is -EAGAIN. Safe from any thread. */
int sdnotify_send(const char *state);
