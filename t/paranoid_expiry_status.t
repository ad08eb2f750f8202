#!/usr/bin/perl

# Tests for paranoid_session module: a session that timed out is reported
# as such. A request carrying the token of a session unused for longer
# than paranoid_idle_timeout, or older than paranoid_absolute_timeout, gets
# status "expired" (not "new"), a new token and a new uid; the old token is
# not revived afterwards. Telling expiry apart costs nothing: a steady
# request is still exactly one memcached lookup and no write.

###############################################################################

use warnings;
use strict;

use Test::More;
use Time::HiRes qw/ time /;

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

        # tokens alone: an old token would be enough to use a session
        # again, were it revived
        paranoid_session on;
        paranoid_nonce_timeout off;

        location /idle {
            paranoid_idle_timeout 2s;
        }

        location /absolute {
            paranoid_idle_timeout 1h;
            paranoid_absolute_timeout 3s;
        }

        location /steady {
            paranoid_idle_timeout 1h;
        }
    }
}

EOF

$t->write_file($_, $_) for qw/ idle absolute steady /;

memcached_start($t, 11211);
$t->run();

$t->plan(18);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;

# GET $uri with $token alone, leaving no trace in a jar.
sub with_token {
	my ($uri, $token) = @_;
	return session_vars(get_with($uri, 'User-Agent: ParanoidBrowser/1.0',
		cookie_header(sessionid => $token)));
}

# Runs $code; returns its result and what memcached did meanwhile:
# lookups (gets and touches) and writes.
sub counted {
	my ($code) = @_;
	my $before = memcached_stats(11211);
	my $r = $code->();
	my $after = memcached_stats(11211);
	my %d = map { $_ => ($after->{$_} // 0) - ($before->{$_} // 0) }
		qw/ cmd_get cmd_touch cmd_set /;
	return ($r, $d{cmd_get} + $d{cmd_touch}, $d{cmd_set});
}

# Sleeps until $at (a time()), if it is still ahead.
sub sleep_until {
	my ($at) = @_;
	my $wait = $at - time();
	select undef, undef, undef, $wait if $wait > 0;
}

# a steady request: one lookup, nothing written

my $steady = browser();
my $uid = session_vars($steady->get('/steady'))->{uid} // '';
my ($r, $lookups, $writes) = counted(sub { $steady->get('/steady') });
is(session_vars($r)->{status}, 'valid', 'steady: valid');
is(session_vars($r)->{uid}, $uid, 'steady: same uid');
is($lookups, 1, 'steady: one lookup');
is($writes, 0, 'steady: no write');

# two sessions side by side so that the waits overlap: "idle" is left
# alone for 3 seconds (idle timeout 2s), "absolute" is used at 1.5s and
# then at 4s (absolute timeout 3s)

my $idle = browser();
my $v = session_vars($idle->get('/idle'));
my ($idle_uid, $idle_token) = ($v->{uid} // '', $idle->cookie('sessionid'));

my $abs = browser();
my $start = time();
$v = session_vars($abs->get('/absolute'));
my ($abs_uid, $abs_token) = ($v->{uid} // '', $abs->cookie('sessionid'));

sleep_until($start + 1.5);
$v = session_vars($abs->get('/absolute'));
is($v->{status}, 'valid', 'absolute: valid after 1.5s');

sleep_until($start + 3);

# idle 2s: unused for 3 seconds, expired

$r = $idle->get('/idle');
$v = session_vars($r);
is($v->{status}, 'expired', 'idle: status expired');
like(set_cookies($r)->{sessionid}{value} // '', qr/^$TOKEN\z/,
	'idle: new token');
isnt($idle->cookie('sessionid'), $idle_token, 'idle: not the old token');
isnt($v->{uid}, $idle_uid, 'idle: another uid');

$v = with_token('/idle', $idle_token);
is($v->{status}, 'new', 'idle: old token not revived');
isnt($v->{uid}, $idle_uid, 'idle: old uid not revived');

# absolute 3s: used at 1.5s, expired at 4s

sleep_until($start + 4);

$r = $abs->get('/absolute');
$v = session_vars($r);
is($v->{status}, 'expired', 'absolute: status expired');
like(set_cookies($r)->{sessionid}{value} // '', qr/^$TOKEN\z/,
	'absolute: new token');
isnt($abs->cookie('sessionid'), $abs_token, 'absolute: not the old token');
isnt($v->{uid}, $abs_uid, 'absolute: another uid');

$v = with_token('/absolute', $abs_token);
is($v->{status}, 'new', 'absolute: old token not revived');
isnt($v->{uid}, $abs_uid, 'absolute: old uid not revived');

# the new session goes on

is(session_vars($abs->get('/absolute'))->{status}, 'valid',
	'absolute: the new session works');

###############################################################################
