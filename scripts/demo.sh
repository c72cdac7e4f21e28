#!/usr/bin/env bash
# make demo: a real SSH login with pam_totp, on this machine, without touching it.
#
# Builds the module and totp-enroll, creates a throwaway user `pamtotp-demo` with a
# random password, enrolls it (QR code for your phone), and starts a throwaway sshd on
# 127.0.0.1 (port 2222, or the first free one above) that only this user may log in to.
# sshd runs in private namespaces where a temporary directory is mounted over /etc/pam.d,
# so neither the host's sshd nor its /etc/pam.d is touched. Ctrl-C stops the server and
# removes the user, its home and every temporary file.
#
# Needs root, openssh-server (only its /usr/sbin/sshd binary; the host's sshd service
# is not used), util-linux `unshare`, and oathtool for the printed code command.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_USER=pamtotp-demo
CARGO=${CARGO:-cargo}

die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it creates a user and starts sshd): sudo make demo"
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is missing: apt-get install openssh-server"
command -v unshare >/dev/null || die "unshare is missing: apt-get install util-linux"

# PAMTOTP_DEMO_BUILD_DIR: use an existing build there instead of building (the test).
if [ -n "${PAMTOTP_DEMO_BUILD_DIR:-}" ]; then
    build=$PAMTOTP_DEMO_BUILD_DIR
else
    echo "==> Building pam_totp.so and totp-enroll"
    "$CARGO" build --workspace --quiet
    build=target/debug
fi
[ -f "$build/libpam_totp.so" ] && [ -x "$build/totp-enroll" ] || die "build output missing in $build"

tmp=
sshd_pid=
created_user=
cleanup() {
    # Must run to the end even when the terminal is gone (writes fail): no set -e here.
    set +e
    trap - EXIT INT TERM HUP
    echo
    echo "==> Stopping the demo"
    if [ -n "$sshd_pid" ]; then
        # unshare --kill-child: sshd (PID 1 of its namespace) and its sessions die too.
        kill -KILL "$sshd_pid" 2>/dev/null || true
        wait "$sshd_pid" 2>/dev/null || true
    fi
    if [ -n "$created_user" ]; then
        userdel --remove "$DEMO_USER" 2>/dev/null || true
        echo "    removed user $DEMO_USER and its home"
    fi
    [ -n "$tmp" ] && rm -rf -- "$tmp"
    echo "    sshd stopped, temporary files removed"
}
trap cleanup EXIT
trap 'exit 0' INT TERM HUP

port=2222
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
while port_in_use "$port"; do
    port=$((port + 1))
    [ "$port" -lt 2300 ] || die "no free port between 2222 and 2299"
done

tmp=$(mktemp -d /tmp/pam_totp-demo.XXXXXX)
chmod 755 "$tmp"

echo "==> Creating the throwaway user $DEMO_USER"
if id "$DEMO_USER" >/dev/null 2>&1; then
    die "user $DEMO_USER already exists (a demo still running?); remove it: userdel -r $DEMO_USER"
fi
useradd --create-home --shell /bin/bash "$DEMO_USER"
created_user=1
password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | cut -c1-12)
echo "$DEMO_USER:$password" | chpasswd

# The module's config: the user's record in ~/.pam_totp (the default), state here.
cat >"$tmp/pam_totp.toml" <<EOF
state_dir = "$tmp/state"
issuer = "pam_totp demo"
EOF
cp "$build/libpam_totp.so" "$tmp/pam_totp.so"
install -d -m 0700 "$tmp/state" # as the packages do: the module never creates it

# The PAM service: the shipped pam.d/sshd snippet, pam_totp.so pointing at our build.
mkdir "$tmp/pam.d"
{
    grep -v -e '^#' -e '^$' pam.d/sshd |
        sed "s|pam_totp\.so|$tmp/pam_totp.so config=$tmp/pam_totp.toml|"
    echo "account required pam_unix.so"
    echo "session required pam_permit.so"
    echo "password required pam_deny.so"
} >"$tmp/pam.d/sshd"

ssh-keygen -q -t ed25519 -N '' -C pam_totp-demo -f "$tmp/host_key"
{
    cat pam.d/sshd_config.d/pam_totp-password.conf
    cat <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $tmp/host_key
PidFile $tmp/sshd.pid
AllowUsers $DEMO_USER
PermitRootLogin no
PrintMotd no
LogLevel VERBOSE
EOF
} >"$tmp/sshd_config"
mkdir -p /run/sshd
/usr/sbin/sshd -t -f "$tmp/sshd_config" || die "sshd rejects the demo config"

echo "==> Starting a throwaway sshd on 127.0.0.1:$port (log: $tmp/sshd.log)"
unshare --mount --propagation private --pid --fork --kill-child --mount-proc \
    /bin/sh -c "mount --bind '$tmp/pam.d' /etc/pam.d && exec /usr/sbin/sshd -D -e -f '$tmp/sshd_config'" \
    </dev/null >"$tmp/sshd.log" 2>&1 &
sshd_pid=$!
for _ in $(seq 50); do
    grep -q "Server listening" "$tmp/sshd.log" && break
    kill -0 "$sshd_pid" 2>/dev/null || { cat "$tmp/sshd.log" >&2; die "sshd did not start"; }
    sleep 0.1
done
grep -q "Server listening" "$tmp/sshd.log" || die "sshd did not start listening"

secret=$(head -c 20 /dev/urandom | base32 | tr -d '=\n')
echo "==> Enrolling $DEMO_USER: scan the QR code with Microsoft Authenticator (or similar)"
if [ -t 0 ]; then
    "$build/totp-enroll" --config "$tmp/pam_totp.toml" --user "$DEMO_USER" --secret "$secret"
else
    # No terminal to type into: confirm with oathtool's code instead of the phone's.
    command -v oathtool >/dev/null || die "stdin is not a terminal and oathtool is missing"
    oathtool --totp --base32 "$secret" |
        "$build/totp-enroll" --config "$tmp/pam_totp.toml" --user "$DEMO_USER" --secret "$secret"
fi

cat <<EOF

==> Ready. In another terminal, log in:

    ssh -p $port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null $DEMO_USER@127.0.0.1

    Password:           $password
    Verification code:  the 6 digits your app shows for "pam_totp demo", or
                        oathtool --totp --base32 $secret

    Each code works once, the one typed to confirm the enrollment included: for
    the first login, and for each further one, wait for the next code (30 s).
    Try a wrong password or a wrong code: the prompts are the same either way.

Press Ctrl-C to stop the server and remove $DEMO_USER.
EOF
wait "$sshd_pid" || true
sshd_pid=
echo "demo: sshd exited; log:" >&2
tail -n 20 "$tmp/sshd.log" >&2 || true
