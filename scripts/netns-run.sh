#!/usr/bin/env bash
# Runs CMD... inside a private network namespace where WebRTC can reach 127.0.0.1.
#
# libwebrtc (Chromium, and the Rust core of LiveKit's Python SDK) ignores interfaces flagged
# LOOPBACK, so on an ordinary host a test's WebRTC peers on 127.0.0.1 never connect. Inside a
# fresh namespace (`unshare -n` as root, or `unshare -r -n` in a user namespace) this script brings `lo` up and adds a veth pair
# whose one end holds 127.0.0.2/32: an interface libwebrtc accepts, with an address that
# reaches only this namespace. It exports VOICE_WIDGET_E2E_NETNS=1 and runs CMD there.
#
# Without unshare/ip (or without the right to use them) it says why in one line and runs CMD
# as it is, without the variable, so the media tests skip themselves.
set -u
if [ "$#" -eq 0 ]; then
  echo "usage: $0 CMD [ARG...]" >&2
  exit 2
fi

if [ "${VOICE_WIDGET_E2E_NETNS_INSIDE:-}" = "1" ]; then
  # Second stage: we are inside the new namespace.
  unset VOICE_WIDGET_E2E_NETNS_INSIDE
  if ip link set lo up \
    && ip link add vwe0 type veth peer name vwe1 \
    && ip addr add 127.0.0.2/32 dev vwe0 \
    && ip link set vwe0 up \
    && ip link set vwe1 up; then
    export VOICE_WIDGET_E2E_NETNS=1
  else
    echo "netns-run: could not set up lo and the veth pair in the namespace; running without it" >&2
  fi
  exec "$@"
fi

why=""
unshare_args=(-n)
if ! command -v unshare >/dev/null 2>&1; then
  why="unshare not found (util-linux)"
elif ! command -v ip >/dev/null 2>&1; then
  why="ip not found (iproute2)"
elif [ "$(id -u)" != "0" ]; then
  # Not root: a user namespace (where the kernel allows unprivileged ones) may do instead.
  unshare_args=(-r -n)
  unshare -r -n true 2>/dev/null \
    || why="not root, and no unprivileged user namespace here (unshare -r -n failed)"
elif ! unshare -n true 2>/dev/null; then
  why="unshare -n failed (no permission to create a network namespace here)"
fi
if [ -n "$why" ]; then
  echo "netns-run: $why; running without VOICE_WIDGET_E2E_NETNS" >&2
  exec "$@"
fi
VOICE_WIDGET_E2E_NETNS_INSIDE=1 exec unshare "${unshare_args[@]}" "$0" "$@"
