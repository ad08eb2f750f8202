#!/usr/bin/perl

# Tests for paranoid_session module: the module loads, nginx serves with it,
# and its variables can be used in add_header, map, if and log_format.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http map rewrite/)->has_daemon('memcached');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;

    map $paranoid_session_status $mapped {
        ""       none;
        default  some;
    }

    log_format paranoid '$uri status="$paranoid_session_status" '
                        'uid="$paranoid_session_uid" '
                        'violation="$paranoid_session_violation"';

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        access_log %%TESTDIR%%/access.log paranoid;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;
        add_header X-Mapped $mapped always;

        location / {
            paranoid_session off;
        }

        location /if {
            paranoid_session off;
            if ($paranoid_session_violation) {
                return 403;
            }
        }
    }
}

EOF

$t->write_file('index.html', 'hello');
$t->write_file('if', 'passed');

$t->run_daemon('memcached', '-l', '127.0.0.1', '-p', port(11211), '-U', '0',
	($> == 0 ? ('-u', 'root') : ()));
$t->run()->waitforsocket('127.0.0.1:' . port(11211));

$t->plan(8);

###############################################################################

my $r = http_get('/');
like($r, qr/^HTTP\/1\.1 200 .*hello$/s, 'served with the module loaded');
like($r, qr/^X-Status: \[\]\r$/m, 'status empty when off');
like($r, qr/^X-Uid: \[\]\r$/m, 'uid empty when off');
like($r, qr/^X-Violation: \[\]\r$/m, 'violation empty when off');
like($r, qr/^X-Mapped: none\r$/m, 'variable usable in map');
unlike($r, qr/^Set-Cookie/mi, 'no cookie when off');

like(http_get('/if'), qr/passed$/, 'variable usable in if');

$t->stop();

like($t->read_file('access.log'),
	qr!^/index\.html status="" uid="" violation=""$!m,
	'variables usable in log_format');

###############################################################################
