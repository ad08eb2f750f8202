#!/usr/bin/perl

# Tests for paranoid_session module: the counters' shared memory zone
# exists only when the configuration uses the module. With a store but no
# location checking sessions, nginx maps no zone of the counters' size and
# requests are served as without the module; reloaded into a configuration
# that checks sessions, the zone appears once (two locations share it) and
# counts. A metrics location that would check sessions is refused.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;
use Test::Paranoid::Load qw/ nginx_workers wait_until /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');

plan(skip_all => 'needs /proc/PID/maps') unless -r "/proc/$$/maps";

# The zone's size (src/metrics/zone.rs): sixteen 4 KiB pages.
my $ZONE = 16 * 4096;

sub conf {
	my ($t, $on) = @_;
	my $use = $on ? <<'EOF' : '';
        location /a { paranoid_session on; }
        location /b { paranoid_session on; }
        location = /metrics { paranoid_session_metrics; }
EOF
	$t->write_file_expand('nginx.conf', <<"EOF");

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

        add_header X-Status "[\$paranoid_session_status]" always;

$use
    }
}

EOF
}

# Shared anonymous mappings of the zone's size in the master process.
sub zones {
	my ($t) = @_;
	my $pid = $t->read_file('nginx.pid');
	chomp $pid;
	open my $fh, '<', "/proc/$pid/maps" or return -1;
	my $n = 0;
	while (<$fh>) {
		my ($from, $to, $perms) = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/ or next;
		no warnings 'portable';    # 64-bit addresses
		$n++ if hex($to) - hex($from) == $ZONE && $perms =~ /s/;
	}
	return $n;
}

conf($t, 0);
$t->write_file($_, $_) for qw/ index.html a b /;

memcached_start($t, 11211);
$t->run();

$t->plan(8);

###############################################################################

is(zones($t), 0, 'module unused: no zone');
like(http_get('/'), qr/X-Status: \[\]/, 'module unused: nothing checked');
like(http_get('/metrics'), qr/^HTTP\/1\.1 404/, 'module unused: no endpoint');

my $old = [ keys %{nginx_workers($t)} ];
conf($t, 1);
$t->reload();
ok(wait_until(20, sub {
	my $w = nginx_workers($t);
	my @p = keys %$w;
	@p && !grep({ $w->{$_} =~ /shutting down/ } @p)
		&& !grep({ my $p = $_; grep { $_ == $p } @$old } @p);
}), 'reloaded');

is(zones($t), 1, 'module used: one zone for every location');
like(http_get('/a'), qr/X-Status: \[new\]/, 'a checked');
like(http_get('/metrics'),
	qr/^paranoid_session_requests_total\{status="new"\} 1$/m, 'counted');

# the metrics location never checks sessions

$t->write_file_expand('bad.conf', <<'EOF');
%%TEST_GLOBALS%%
events {
}
http {
    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    server {
        listen 127.0.0.1:8080;
        location /metrics {
            paranoid_session on;
            paranoid_session_metrics;
        }
    }
}
EOF
my $d = $t->testdir();
my $out = `$Test::Nginx::NGINX -p $d/ -c bad.conf -t 2>&1`;
like($out, qr/"paranoid_session on" cannot be used in a location with "paranoid_session_metrics"/,
	'metrics location with paranoid_session on: refused');

###############################################################################
