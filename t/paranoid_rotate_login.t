#!/usr/bin/perl

# Tests for paranoid_session module: a rotation for a privilege change
# (paranoid_session_rotate on, a login) ends the old token at once, however
# long paranoid_nonce_window_timeout is: the token an attacker planted or
# saw before the login is worth nothing after it. Timed cycling
# (paranoid_key_timeout) keeps the old token as a pointer for the window,
# for requests in flight; a request that reached its session through such
# a pointer never rotates or cycles, so an old token cannot mint new ones.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;

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

        # tokens alone: an old token is all a request needs; a long grace
        # for timed cycling, which a login must not grant
        paranoid_session on;
        paranoid_nonce_timeout off;
        paranoid_nonce_window_timeout 10s;

        location / {
        }

        location /login {
            paranoid_session_rotate on;
        }

        location /cycle {
            paranoid_key_timeout 1s;
        }
    }
}

EOF

$t->write_file($_, $_) for qw/ index.html login cycle /;

memcached_start($t, 11211);
$t->run();

$t->plan(25);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;

# GET $uri with $token alone, leaving no trace in a jar: the response and
# its variables.
sub with_token {
	my ($uri, $token) = @_;
	my $r = get_with($uri, 'User-Agent: ParanoidBrowser/1.0',
		cookie_header(sessionid => $token));
	return ($r, session_vars($r));
}

# A new session at "/": its uid and token.
sub session {
	my $r = get_with('/', 'User-Agent: ParanoidBrowser/1.0');
	return (session_vars($r)->{uid} // '',
		set_cookies($r)->{sessionid}{value} // '');
}

# login: the token before it is dead at once, the new one works

my ($uid, $t0) = session();
my ($r, $v) = with_token('/login', $t0);
my $t1 = set_cookies($r)->{sessionid}{value} // '';
is($v->{status}, 'rotated', 'login: rotated');
is($v->{uid}, $uid, 'login: same uid');
like($t1, qr/^$TOKEN\z/, 'login: new token');
isnt($t1, $t0, 'login: another token');

($r, $v) = with_token('/', $t0);
is($v->{status}, 'new', 'login: token before it unknown at once');
isnt($v->{uid}, $uid, 'login: token before it, another uid');

($r, $v) = with_token('/', $t1);
is($v->{status}, 'valid', 'login: new token valid');
is($v->{uid}, $uid, 'login: new token, same uid');

# two sessions for timed cycling, started together so that the waits
# overlap: "pointer" uses its old token after cycling, "grace" checks that
# timed cycling keeps the old token

my ($p_uid, $p0) = session();
my ($g_uid, $g0) = session();

select undef, undef, undef, 1.2;

# timed cycling keeps its grace: the old token still leads to the session

($r, $v) = with_token('/cycle', $g0);
my $g1 = set_cookies($r)->{sessionid}{value} // '';
is($v->{status}, 'rotated', 'grace: cycled after the key timeout');
like($g1, qr/^$TOKEN\z/, 'grace: new token');

($r, $v) = with_token('/', $g0);
is($v->{status}, 'valid', 'grace: old token valid');
is($v->{uid}, $g_uid, 'grace: old token, same uid');
is(set_cookie_count($r, 'sessionid'), 0, 'grace: old token, no token set');

# through a pointer: never cycled nor rotated

($r, $v) = with_token('/cycle', $p0);
my $p1 = set_cookies($r)->{sessionid}{value} // '';
is($v->{status}, 'rotated', 'pointer: cycled after the key timeout');
like($p1, qr/^$TOKEN\z/, 'pointer: new token');

# the session's key is due again; the old token reaches it only through the
# pointer, which must not cycle it

select undef, undef, undef, 1.2;

($r, $v) = with_token('/cycle', $p0);
is($v->{status}, 'valid', 'pointer: key due, old token not cycled');
is($v->{uid}, $p_uid, 'pointer: same uid');
is(set_cookie_count($r, 'sessionid'), 0, 'pointer: no token set on cycling');

($r, $v) = with_token('/login', $p0);
is($v->{status}, 'valid', 'pointer: login with the old token not rotated');
is($v->{uid}, $p_uid, 'pointer: login, same uid');
is(set_cookie_count($r, 'sessionid'), 0, 'pointer: no token set on login');

# the token the session was cycled to is still its token

($r, $v) = with_token('/', $p1);
is($v->{status}, 'valid', 'pointer: new token still valid');
is($v->{uid}, $p_uid, 'pointer: new token, same uid');

# and it cycles as usual

($r, $v) = with_token('/cycle', $p1);
is($v->{status}, 'rotated', 'pointer: new token cycles when due');
is($v->{uid}, $p_uid, 'pointer: cycled, same uid');

###############################################################################
