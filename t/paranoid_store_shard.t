#!/usr/bin/perl

# Tests for paranoid_session module: two memcached servers share the
# sessions by rendezvous hashing, every later request of a session reaches
# the server holding it, and a keepalive pool serves sequential requests
# over a handful of connections.

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
worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # The store tests follow only the token cookie.
    paranoid_nonce_timeout off;
    paranoid_session_store 127.0.0.1:%%PORT_11211%% 127.0.0.1:%%PORT_11212%%;
    paranoid_session_store_keepalive 8;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;

        location / {
            paranoid_session on;
        }
    }
}

EOF

$t->write_file('index.html', 'hello');

memcached_start($t, 11211);
memcached_start($t, 11212);
$t->run();

$t->plan(7);

###############################################################################

my $sessions = 1000;
my (@tokens, $new);
for (1 .. $sessions) {
	my $r = http_get('/');
	$new++ if $r =~ /\[new\]/;
	push @tokens, session_cookie($r);
}
is($new, $sessions, "$sessions new sessions");

my $a = memcached_stats(11211)->{curr_items};
my $b = memcached_stats(11212)->{curr_items};
is($a + $b, $sessions, 'every session stored once');
cmp_ok($a, '>=', 0.3 * $sessions, "first server holds $a (>= 30%)");
cmp_ok($b, '>=', 0.3 * $sessions, "second server holds $b (>= 30%)");

# Every session is found again: a request sent to the wrong server would
# miss and start a new session instead.

# A lookup is one mg that also refreshes the TTL: memcached counts it as a
# touch.
sub lookups {
	my $n = 0;
	for my $port (11211, 11212) {
		my $s = memcached_stats($port);
		$n += $s->{get_hits} + $s->{touch_hits};
	}
	return $n;
}

my $valid = 0;
my $hits_before = lookups();
for my $token (@tokens[0 .. 199]) {
	$valid++ if get_with('/', cookie_header(sessionid => $token))
		=~ /\[valid\]/;
}
is($valid, 200, 'every session found on its server');

is(lookups() - $hits_before, 200, 'one memcached hit per request');

# 1200 sequential session requests went over the keepalive pool; each of
# the stats calls above opened one connection of its own.

my $conns = memcached_stats(11211)->{total_connections}
	+ memcached_stats(11212)->{total_connections};
cmp_ok($conns, '<=', 20, "keepalive: $conns connections for 1200 requests");

###############################################################################
