#!/usr/bin/env bash
# Installs the Debian tools some tests use (tcpdump for live captures), when
# running as root with apt available. Tests that need a missing tool skip and
# say why, so a failure here is not fatal.
command -v tcpdump >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing tcpdump for the live capture tests" >&2
  (apt-get install -y -qq tcpdump >/dev/null 2>&1 ||
   { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq tcpdump >/dev/null 2>&1; }) ||
    echo "could not install tcpdump; live capture tests will skip" >&2
fi
exit 0
