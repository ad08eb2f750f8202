#!/usr/bin/perl

# Tests for paranoid_session module: token cycling. Once the token is older
# than paranoid_key_timeout the next request gets a new one (status
# "rotated", same uid); the old token keeps working for
# paranoid_nonce_window_timeout, for requests already in flight, then is
# unknown. A paranoid_session_rotate location issues a new token on every
# request.

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

        location /cycle {
            paranoid_session on;
            paranoid_cookie csid;
            paranoid_key_timeout 1s;
            paranoid_nonce_timeout off;
            paranoid_nonce_window_timeout 2s;
        }

        location /app {
            paranoid_session on;
        }

        location /login {
            paranoid_session on;
            paranoid_session_rotate on;
        }
    }
}

EOF

$t->write_file($_, $_) for qw/ cycle app login /;

memcached_start($t, 11211);
$t->run();

$t->plan(28);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;

# Uses $token alone (nonces are off in /cycle), leaving no trace in a jar.
sub with_token {
	my ($uri, $name, $token) = @_;
	return session_vars(get_with($uri, 'User-Agent: ParanoidBrowser/1.0',
		cookie_header($name => $token)));
}

# key timeout 1s

my $b = browser();
my $uid = session_vars($b->get('/cycle'))->{uid} // '';
my $t0 = $b->cookie('csid') // '';

my $r = $b->get('/cycle');
is(session_vars($r)->{status}, 'valid', 'cycle: young token valid');
is(set_cookie_count($r, 'csid'), 0, 'cycle: young token kept');

select undef, undef, undef, 1.2;

$r = $b->get('/cycle');
my $v = session_vars($r);
my $t1 = set_cookies($r)->{csid}{value} // '';
is($v->{status}, 'rotated', 'cycle: rotated after the key timeout');
is($v->{uid}, $uid, 'cycle: same uid');
like($t1, qr/^$TOKEN\z/, 'cycle: new token');
isnt($t1, $t0, 'cycle: another token');
like($r, qr/^Set-Cookie: csid=$TOKEN; Path=\/; HttpOnly; SameSite=Lax\r$/m,
	'cycle: new token cookie attributes');

$r = $b->get('/cycle');
$v = session_vars($r);
is($v->{status}, 'valid', 'cycle: new token valid');
is($v->{uid}, $uid, 'cycle: new token, same uid');
is(set_cookie_count($r, 'csid'), 0, 'cycle: new token not cycled again');

# the old token, for requests in flight: still the same session

$v = with_token('/cycle', csid => $t0);
like($v->{status} // '', qr/^(valid|rotated)\z/, 'grace: old token works');
is($v->{uid}, $uid, 'grace: old token, same uid');

# after the window timeout (2s) the old token is unknown; the session
# itself goes on with its new token

select undef, undef, undef, 2.5;

$v = with_token('/cycle', csid => $t0);
like($v->{status} // '', qr/^(new|expired)\z/, 'grace over: old token unknown');
isnt($v->{uid}, $uid, 'grace over: another uid');

$r = $b->get('/cycle');
$v = session_vars($r);
is($v->{status}, 'rotated', 'grace over: the session goes on, cycled again');
is($v->{uid}, $uid, 'grace over: same uid');

$v = session_vars($b->get('/cycle'));
is($v->{status}, 'valid', 'grace over: third token valid');
is($v->{uid}, $uid, 'grace over: third token, same uid');

# rotate on: every request a new token, same uid

$b = browser();
$uid = session_vars($b->get('/app'))->{uid} // '';
my %seen = ($b->cookie('sessionid') // '' => 1);
my $rotated = 0;
for (1 .. 3) {
	my $r = $b->get('/login');
	my $v = session_vars($r);
	my $token = set_cookies($r)->{sessionid}{value} // '';
	$rotated++ if ($v->{status} // '') eq 'rotated' && $v->{uid} eq $uid
		&& $token =~ /^$TOKEN\z/ && !$seen{$token}++;
}
is($rotated, 3, 'rotate: a new token on each request, same uid');
like($b->last_response,
	qr/^Set-Cookie: sessionid=$TOKEN; Path=\/; HttpOnly; SameSite=Lax\r$/m,
	'rotate: cookie attributes');
is(set_cookie_count($b->last_response, 'sessionid'), 1, 'rotate: set once');

$r = $b->get('/app');
$v = session_vars($r);
is($v->{status}, 'valid', 'rotate: the latest token works elsewhere');
is($v->{uid}, $uid, 'rotate: same uid elsewhere');
is(set_cookie_count($r, 'sessionid'), 0, 'rotate: only where configured');

# a new session on a rotate location is just new

$b = browser();
$r = $b->get('/login');
$v = session_vars($r);
is($v->{status}, 'new', 'rotate: a new session is new');
is(set_cookie_count($r, 'sessionid'), 1, 'rotate: one token for it');
$uid = $v->{uid} // '';
$v = session_vars($b->get('/login'));
is($v->{status}, 'rotated', 'rotate: then rotated');
is($v->{uid}, $uid, 'rotate: same uid');

###############################################################################
