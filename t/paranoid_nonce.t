#!/usr/bin/perl

# Tests for paranoid_session module: per-request nonces. The nonce is
# renewed once older than paranoid_nonce_timeout (0: on every request);
# up to paranoid_nonce_window superseded nonces stay acceptable for
# paranoid_nonce_window_timeout, so overlapping requests are not cut off;
# anything older, unknown or absent is a violation "nonce". With nonces off
# no nonce cookie is set or required.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx qw/ :DEFAULT http_start http_end /;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;
worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;

        location /default {
            paranoid_session on;
        }

        location /zero {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_nonce_window 1;
        }

        location /nowindow {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_nonce_window 0;
        }

        location /window2 {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_nonce_window 2;
            paranoid_nonce_window_timeout 2s;
        }

        location /deny {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_on_violation deny;
        }

        location /log {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_on_violation log;
        }

        location /off {
            paranoid_session on;
            paranoid_nonce_timeout off;
        }
    }
}

EOF

$t->write_file($_, $_) for qw/ default zero nowindow window2 deny log off /;

memcached_start($t, 11211);
$t->run();

$t->plan(50);

###############################################################################

my $NONCE = qr/[A-Za-z0-9_-]{22}/;

# A new session at $uri; returns the browser and its uid.
sub session_at {
	my ($uri) = @_;
	my $b = browser();
	my $v = session_vars($b->get($uri));
	return ($b, $v->{uid} // '');
}

# The nonce a response sets, if any.
sub nonce_of { return set_cookies($_[0])->{sessionnonce}{value} }

# default timeout 1s: renewed only once the nonce is a second old

my ($b, $uid) = session_at('/default');
my $n0 = $b->cookie('sessionnonce') // '';
like($n0, qr/^$NONCE\z/, 'default: nonce set with the session');

my $r = $b->get('/default');
is(session_vars($r)->{status}, 'valid', 'default: valid with the nonce');
ok(!defined nonce_of($r), 'default: young nonce not renewed');

select undef, undef, undef, 1.2;

$r = $b->get('/default');
my $n1 = nonce_of($r) // '';
is(session_vars($r)->{status}, 'valid', 'default: valid after a second');
like($n1, qr/^$NONCE\z/, 'default: nonce renewed after a second');
isnt($n1, $n0, 'default: a new nonce');
is(session_vars($b->get('/default'))->{status}, 'valid',
	'default: valid with the new nonce');

$r = $b->get('/default', add => { sessionnonce => $n0 }, keep => 0);
is(session_vars($r)->{status}, 'valid', 'default: previous nonce in window');
is(session_vars($r)->{uid}, $uid, 'default: same uid');

# an unknown nonce, or none, on a session that has one

$r = $b->get('/default', add => { sessionnonce => 'A' x 22 }, keep => 0);
my $v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 /, 'unknown nonce: clear continues');
is($v->{status}, 'violation', 'unknown nonce: violation');
is($v->{violation}, 'nonce', 'unknown nonce: reason');
isnt($v->{uid}, $uid, 'unknown nonce: a fresh session');
isnt(session_vars($b->get('/default'))->{uid}, $uid,
	'unknown nonce: old session gone');

($b, $uid) = session_at('/default');
$v = session_vars($b->get('/default', drop => ['sessionnonce']));
is($v->{violation}, 'nonce', 'absent nonce: violation');

($b, $uid) = session_at('/default');
$v = session_vars($b->get('/default', add => { sessionnonce => 'short' }));
is($v->{violation}, 'nonce', 'malformed nonce: violation');

# timeout 0: a new nonce on every request

($b, $uid) = session_at('/zero');
my @nonces = ($b->cookie('sessionnonce') // '');
my $renewed = 0;
for (1 .. 3) {
	$r = $b->get('/zero');
	my $n = nonce_of($r) // '';
	$renewed++ if session_vars($r)->{status} eq 'valid' && $n =~ /^$NONCE\z/
		&& !grep { $_ eq $n } @nonces;
	push @nonces, $n;
}
is($renewed, 3, 'zero: a new nonce on each request');

# window 1: the previous nonce is accepted, the one before is not

$v = session_vars($b->get('/zero', add => { sessionnonce => $nonces[2] },
	keep => 0));
is($v->{status}, 'valid', 'zero: previous nonce accepted');
is($v->{uid}, $uid, 'zero: previous nonce, same uid');
$v = session_vars($b->get('/zero', add => { sessionnonce => $nonces[1] },
	keep => 0));
is($v->{status}, 'violation', 'zero: older nonce refused');
is($v->{violation}, 'nonce', 'zero: older nonce reason');

# window timeout 1s: the previous nonce is refused once it passed

($b, $uid) = session_at('/zero');
$n0 = $b->cookie('sessionnonce') // '';
$b->get('/zero');
select undef, undef, undef, 1.3;
$v = session_vars($b->get('/zero', add => { sessionnonce => $n0 },
	keep => 0));
is($v->{status}, 'violation', 'window timeout: refused after it');
is($v->{violation}, 'nonce', 'window timeout: reason');

# window 0: only the current nonce

($b, $uid) = session_at('/nowindow');
$n0 = $b->cookie('sessionnonce') // '';
$r = $b->get('/nowindow');
is(session_vars($r)->{status}, 'valid', 'window 0: current nonce');
$v = session_vars($b->get('/nowindow', add => { sessionnonce => $n0 },
	keep => 0));
is($v->{violation}, 'nonce', 'window 0: previous nonce refused');

# window 2

($b, $uid) = session_at('/window2');
@nonces = ($b->cookie('sessionnonce') // '');
for (1 .. 3) {
	$b->get('/window2');
	push @nonces, $b->cookie('sessionnonce') // '';
}
$v = session_vars($b->get('/window2', add => { sessionnonce => $nonces[1] },
	keep => 0));
is($v->{status}, 'valid', 'window 2: two back accepted');
is($v->{uid}, $uid, 'window 2: same uid');
$v = session_vars($b->get('/window2', add => { sessionnonce => $nonces[2] },
	keep => 0));
is($v->{status}, 'valid', 'window 2: one back accepted');
$v = session_vars($b->get('/window2', add => { sessionnonce => $nonces[0] },
	keep => 0));
is($v->{violation}, 'nonce', 'window 2: three back refused');

# deny

($b, $uid) = session_at('/deny');
$r = $b->get('/deny', add => { sessionnonce => 'A' x 22 });
like($r, qr/^HTTP\/1\.1 403 /, 'deny: 403');
is(session_vars($r)->{violation}, 'nonce', 'deny: reason');
like($r, qr/^Set-Cookie: sessionid=[^;\r]*; Path=\/; Max-Age=0;/m,
	'deny: token cookie expired');
like($r, qr/^Set-Cookie: sessionnonce=[^;\r]*; Path=\/; Max-Age=0;/m,
	'deny: nonce cookie expired');
isnt(session_vars($b->get('/deny'))->{uid}, $uid, 'deny: old session gone');

# log: nothing changes, the current nonce stays good

($b, $uid) = session_at('/log');
$r = $b->get('/log', add => { sessionnonce => 'A' x 22 }, keep => 0);
$v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 /, 'log: 200');
is($v->{violation}, 'nonce', 'log: reason');
is(set_cookie_count($r, 'sessionid'), 0, 'log: no token set');
$v = session_vars($b->get('/log'));
is($v->{status}, 'valid', 'log: still valid for the owner');
is($v->{uid}, $uid, 'log: same uid');

# 20 overlapping requests presenting the same nonce (timeout 0, window 1):
# one renews it, the others race with it and must all be accepted

($b, $uid) = session_at('/zero');
my @socks = map { $b->start('/zero') } 1 .. 20;
my ($ok, $valid, %uids) = (0, 0);
for my $sock (@socks) {
	my $r = defined $sock ? http_end($sock) : undef;
	next unless defined $r;
	my $v = session_vars($r);
	$ok++ if ($v->{code} // 0) == 200;
	$valid++ if ($v->{status} // '') eq 'valid';
	$uids{$v->{uid} // ''}++;
}
is($ok, 20, 'concurrent: 20 answered 200');
is($valid, 20, 'concurrent: 20 valid');
is(join(',', keys %uids), $uid, 'concurrent: all the same session');

# afterwards the session goes on: the presented nonce is at most one back

$v = session_vars($b->get('/zero'));
is($v->{status}, 'valid', 'concurrent: session goes on');
is($v->{uid}, $uid, 'concurrent: same uid');

# nonces off

($b, $uid) = session_at('/off');
$r = $b->last_response;
ok(!defined nonce_of($r), 'off: no nonce with a new session');
like(set_cookies($r)->{sessionid}{value} // '', qr/^[A-Za-z0-9_-]{43}\z/,
	'off: token set');
$r = $b->get('/off');
is(session_vars($r)->{status}, 'valid', 'off: valid without a nonce');
ok(!defined nonce_of($r), 'off: no nonce later');
$v = session_vars($b->get('/off', add => { sessionnonce => 'A' x 22 }));
is($v->{status}, 'valid', 'off: a nonce cookie is ignored');
is(session_vars($b->get('/off'))->{uid}, $uid, 'off: same uid');

###############################################################################
