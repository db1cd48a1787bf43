/** Text seeds for the configuration-file fuzzers (typical files as distributions ship them). */

export const CHRONY_CONF_SEEDS: readonly string[] = [
  `# Debian-like chrony.conf
pool 2.debian.pool.ntp.org iburst maxsources 4
server 192.0.2.1 iburst minpoll 4 maxpoll 10 prefer xleave
server 2001:db8::1 burst presend 6 maxdelay 0.1 polltarget 12 offset -0.001 noselect
peer 198.51.100.7 key 3
keyfile /etc/chrony/chrony.keys
driftfile /var/lib/chrony/chrony.drift interval 3600
ntsdumpdir /var/lib/chrony
logdir /var/log/chrony
log measurements statistics tracking
maxupdateskew 100.0
rtcsync
makestep 1 3
leapsectz right/UTC
leapsecmode slew
smoothtime 400 0.001 leaponly
allow 192.168.0.0/16
deny 192.168.100/24
cmdallow 127.0.0.1
cmdratelimit interval -4 burst 16
ratelimit interval 3 burst 8 leak 2
clientloglimit 4194304
local stratum 10 orphan distance 1.5
minsources 2
maxdistance 16
bindcmdaddress 127.0.0.1
port 123
confdir /etc/chrony/conf.d
sourcedir /run/chrony-dhcp
include /etc/chrony/extra.conf
`,
  `! comments ; % and ! too
server ntp.example.net nts iburst
ntsservercert /etc/ssl/server.crt
ntsserverkey /etc/ssl/server.key
ntstrustedcerts /etc/ssl/ca.pem
ntsport 4460
ntsrotate 604800
maxntsconnections 100
`,
];

export const NTP_CONF_SEEDS: readonly string[] = [
  `# NTPsec ntp.conf
driftfile /var/lib/ntpsec/ntp.drift
leapfile /usr/share/zoneinfo/leap-seconds.list
statsdir /var/log/ntpsec/
statistics loopstats peerstats clockstats
filegen loopstats file loopstats type day enable
filegen peerstats file peerstats type day enable
pool 0.debian.pool.ntp.org iburst
server 192.0.2.1 iburst minpoll 4 maxpoll 10 prefer
server [2001:db8::1]:123 noselect
peer 198.51.100.7 key 12
keys /etc/ntpsec/ntp.keys
trustedkey 1-3 12
controlkey 1
restrict default kod nomodify nopeer noquery limited
restrict -6 default kod nomodify nopeer noquery limited
restrict 127.0.0.1
restrict ::1
restrict 192.168.0.0 mask 255.255.0.0 nomodify
tos minclock 3 maxclock 6 orphan 10
tinker panic 0 step 0.128
discard average 3 minimum 1
includefile /etc/ntpsec/extra.conf
`,
];

export const KEYS_SEEDS: Record<'chrony' | 'ntp', readonly string[]> = {
  chrony: [
    `# chrony.keys
1 MD5 HEX:6B5036B6B7E4D1F5C8B0B2E2A9A1C0D3
2 SHA1 HEX:1DC764E0791B11FA67EFC7ECBC4B0D73F68A070C
3 AES128 HEX:6B5036B6B7E4D1F5C8B0B2E2A9A1C0D3
10 SHA256 ASCII:thisisapassword
42 plaintextkey
4294967295 MD5 ASCII:x
`,
  ],
  ntp: [
    `# ntp.keys
1 MD5 thisisapassword # comment
2 SHA1 1dc764e0791b11fa67efc7ecbc4b0d73f68a070c
3 AES128CMAC 6b5036b6b7e4d1f5c8b0b2e2a9a1c0d3
65535 md5 short
`,
  ],
};

/** JSON control protocol requests as rubidiumc sends them. */
export const JSON_CONTROL_SEEDS: readonly string[] = [
  '{"cmd":"tracking"}',
  '{"cmd":"sources","args":["-v"]}',
  '{"cmd":"add","args":["server","192.0.2.1","iburst","minpoll","4"]}',
  '{"cmd":"burst","args":["4/8","192.0.2.0/24"]}',
  '{"cmd":"makestep","args":[]}',
];
