#!/usr/bin/perl

# Tests for paranoid_session module: paranoid_on_violation log. A violating
# request is processed exactly as a valid one would be: its nonce is
# renewed when due, its token rotated (paranoid_session_rotate) or cycled
# (paranoid_key_timeout) when due; only the violation is logged at warn and
# shown in the variables (status "violation", the reason, the session's
# uid). Otherwise a client that once lost its nonce would be a violation
# for ever, and rotation at login would stop for the whole roll-out.

###############################################################################

use warnings;
use strict;

use Test::More;
use MIME::Base64 qw/ encode_base64url /;

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
        add_header X-Violation "[$paranoid_session_violation]" always;

        paranoid_session on;
        paranoid_on_violation log;

        location /nonce {
            paranoid_nonce_timeout 0;
        }

        location /app {
            paranoid_nonce_timeout off;
        }

        location /login {
            paranoid_nonce_timeout off;
            paranoid_session_rotate on;
        }

        location /cycle {
            paranoid_nonce_timeout off;
            paranoid_key_timeout 1s;
        }
    }
}

EOF

$t->write_file($_, $_) for qw/ nonce app login cycle /;

memcached_start($t, 11211);
$t->run();

$t->plan(26);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;
my $NONCE = qr/[A-Za-z0-9_-]{22}/;

# A well-formed nonce the session never issued: 16 random bytes.
sub forged_nonce {
	return encode_base64url(join '', map { chr int rand 256 } 1 .. 16);
}

# nonce timeout 0: a client holding a nonce the session does not know is
# logged, and resynced with a new nonce like any request

my $b = browser();
my $uid = session_vars($b->get('/nonce'))->{uid} // '';
$b->set(sessionnonce => forged_nonce());

my $r = $b->get('/nonce');
my $v = session_vars($r);
my $n1 = set_cookies($r)->{sessionnonce}{value} // '';
is($v->{code}, 200, 'nonce: 200');
is($v->{status}, 'violation', 'nonce: status violation');
is($v->{violation}, 'nonce', 'nonce: reason');
is($v->{uid}, $uid, 'nonce: the session\'s uid');
is(set_cookie_count($r, 'sessionid'), 0, 'nonce: token kept');
like($n1, qr/^$NONCE\z/, 'nonce: renewed as for a valid request');

$v = session_vars($b->get('/nonce'));
is($v->{status}, 'valid', 'nonce: valid with the renewed nonce');
is($v->{uid}, $uid, 'nonce: renewed nonce, same uid');
is($v->{violation}, '', 'nonce: no violation any more');

# rotate on: a violating request is rotated too, and the token before it
# is dead as after any login

$b = browser();
$uid = session_vars($b->get('/app'))->{uid} // '';
my $t0 = $b->cookie('sessionid') // '';

$r = $b->get('/login', ua => 'OtherBrowser/2.0');
$v = session_vars($r);
my $t1 = set_cookies($r)->{sessionid}{value} // '';
is($v->{status}, 'violation', 'rotate: status violation');
is($v->{violation}, 'fingerprint', 'rotate: reason');
is($v->{uid}, $uid, 'rotate: the session\'s uid');
like($t1, qr/^$TOKEN\z/, 'rotate: new token');
isnt($t1, $t0, 'rotate: another token');

$v = session_vars($b->get('/app'));
is($v->{status}, 'valid', 'rotate: new token valid');
is($v->{uid}, $uid, 'rotate: new token, same uid');

$v = session_vars(get_with('/app', 'User-Agent: ParanoidBrowser/1.0',
	cookie_header(sessionid => $t0)));
is($v->{status}, 'new', 'rotate: token before it dead');
isnt($v->{uid}, $uid, 'rotate: token before it, another uid');

# timed cycling: a violating request whose key is due is cycled too

$b = browser();
$uid = session_vars($b->get('/cycle'))->{uid} // '';
$t0 = $b->cookie('sessionid') // '';

select undef, undef, undef, 1.2;

$r = $b->get('/cycle', ua => 'OtherBrowser/2.0');
$v = session_vars($r);
$t1 = set_cookies($r)->{sessionid}{value} // '';
is($v->{status}, 'violation', 'cycle: status violation');
is($v->{violation}, 'fingerprint', 'cycle: reason');
is($v->{uid}, $uid, 'cycle: the session\'s uid');
like($t1, qr/^$TOKEN\z/, 'cycle: new token');
isnt($t1, $t0, 'cycle: another token');

$v = session_vars($b->get('/cycle'));
is($v->{status}, 'valid', 'cycle: new token valid');
is($v->{uid}, $uid, 'cycle: new token, same uid');

# every violation logged at warn

$t->stop();

my @warn = grep { /\[warn\]/ && /paranoid_session: \w+ violation/ }
	split /\n/, $t->read_file('error.log');
is(join(' ', map { /paranoid_session: (\w+) violation/ } @warn),
	'nonce fingerprint fingerprint', 'each violation logged at warn');

###############################################################################
