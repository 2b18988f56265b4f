#!/usr/bin/env bash
# Install the Debian packages the test suite needs: Dovecot IMAP, and Chromium for the
# browser tests (Playwright drives Debian's build; it never downloads one).
# Idempotent: returns quickly when everything is already present.
set -euo pipefail

PACKAGES=(dovecot-imapd chromium)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done

have_binaries() {
    { command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; } && [ -x /usr/bin/chromium ]
}

if [ "${#missing[@]}" -eq 0 ] && have_binaries; then
    exit 0
fi
# a binary missing even though dpkg says installed: reinstall the packages.
if [ "${#missing[@]}" -eq 0 ]; then
    missing=("${PACKAGES[@]}")
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "install-test-deps: missing packages (${missing[*]}) and not root; install them manually" >&2
        exit 1
    fi
else
    SUDO=()
fi

echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Package lists may be absent or stale on a fresh machine: refresh once, only when needed.
if ! "${SUDO[@]}" apt-get update -q >/dev/null; then
    echo "install-test-deps: apt-get update failed" >&2
    exit 1
fi
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "install-test-deps: apt-get install ${missing[*]} failed" >&2
    exit 1
fi

if ! have_binaries; then
    echo "install-test-deps: dovecot or chromium still not found after install" >&2
    exit 1
fi
echo "install-test-deps: done" >&2
