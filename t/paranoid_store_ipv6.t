#!/usr/bin/perl

# Tests for paranoid_session module: a memcached on IPv6 loopback, sharded
# with one on IPv4.

###############################################################################

use warnings;
use strict;

use Test::More;
use IO::Socket::IP;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');

plan(skip_all => 'no IPv6 loopback')
	unless IO::Socket::IP->new(LocalHost => '::1', Listen => 1);

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # The store tests follow only the token cookie.
    paranoid_nonce_timeout off;
    paranoid_session_store [::1]:%%PORT_11211%% 127.0.0.1:%%PORT_11212%%;

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

memcached_start($t, 11211, '::1');
memcached_start($t, 11212);
$t->run();

$t->plan(4);

###############################################################################

my @tokens = map { session_cookie(http_get('/')) } 1 .. 100;
is(scalar(grep { defined } @tokens), 100, '100 new sessions');

my $v6 = memcached_stats(11211, '::1')->{curr_items} // 0;
my $v4 = memcached_stats(11212)->{curr_items} // 0;
cmp_ok($v6, '>', 0, "IPv6 server holds $v6");
is($v6 + $v4, 100, 'every session stored');

my $valid = grep { get_with('/', cookie_header(sessionid => $_)) =~ /\[valid\]/ }
	@tokens;
is($valid, 100, 'every session found again');

###############################################################################
