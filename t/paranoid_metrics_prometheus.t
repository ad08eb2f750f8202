#!/usr/bin/perl

# Tests for paranoid_session module: the paranoid_session_metrics
# exposition, checked by Prometheus' own tools. After a known number of
# checked requests (first visits, valid requests, fingerprint violations)
# across two workers, `promtool check metrics` accepts the text the
# endpoint answers, the JSON variant carries the same values, and a real
# Prometheus server, started here on its own port with its own storage,
# scrapes the endpoint (up == 1) and answers queries with the counts the
# test produced. Requests to the metrics location itself are not counted.
# Skipped only when Debian's prometheus package (prometheus and promtool)
# is not installed.

###############################################################################

use warnings;
use strict;

use Test::More;

use HTTP::Tiny;
use JSON::PP;
use POSIX ();

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx qw/ :DEFAULT http_content /;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

# Prometheus' binaries, from Debian's prometheus package.
sub tool {
	my ($name) = @_;
	my ($path) = grep { -f $_ && -x $_ }
		map { "$_/$name" } grep { length } split(/:/, $ENV{PATH} // ''),
		'/usr/bin';
	return $path;
}

my $PROMETHEUS = tool('prometheus');
my $PROMTOOL = tool('promtool');

plan(skip_all => 'prometheus and promtool not found (Debian package '
	. '"prometheus", installed by scripts/deps.sh)')
	unless $PROMETHEUS && $PROMTOOL;

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

        location /checked {
            paranoid_session on;
            paranoid_fingerprint $http_user_agent;
        }

        location = /metrics {
            paranoid_session_metrics;
        }
    }
}

EOF

$t->write_file('checked', 'checked');

my $d = $t->testdir();

memcached_start($t, 11211);
$t->run();

$t->plan(39);

###############################################################################

my ($NEW, $VALID, $VIOLATION) = (5, 10, 3);

# $NEW first visits, each browser then back twice ($VALID valid requests),
# and $VIOLATION of them seen again with another User-Agent

my (@browsers, %seen);
for my $n (1 .. $NEW) {
	my $b = browser(ua => "Browser/$n");
	push @browsers, $b;
	$seen{session_vars($b->get('/checked'))->{status} // ''}++;
	$seen{session_vars($b->get('/checked'))->{status} // ''}++ for 1 .. 2;
}
for my $b (@browsers[0 .. $VIOLATION - 1]) {
	my $thief = $b->clone(ua => 'Thief/1.0');
	my $v = session_vars($thief->get('/checked'));
	$seen{$v->{status} // ''}++ if ($v->{violation} // '') eq 'fingerprint';
}
is(join(',', map { "$_=$seen{$_}" } sort keys %seen),
	"new=$NEW,valid=$VALID,violation=$VIOLATION",
	'the requests got the statuses counted below');

# the exposition as text

my $r = http_get('/metrics');
like($r, qr!^HTTP/1\.1 200 !, 'metrics: 200');
like($r, qr!^Content-Type: text/plain; version=0\.0\.4\b!mi,
	'metrics: Prometheus text format');
my $text = http_content($r) // '';
my %m = samples($text);

is($m{'paranoid_session_requests_total{status="new"}'}, $NEW,
	'text: new requests');
is($m{'paranoid_session_requests_total{status="valid"}'}, $VALID,
	'text: valid requests');
is($m{'paranoid_session_requests_total{status="violation"}'}, $VIOLATION,
	'text: violation requests');
is(sum_of(\%m, 'paranoid_session_requests_total'), $NEW + $VALID + $VIOLATION,
	'text: no other requests counted');
is($m{'paranoid_session_violations_total'
	. '{reason="fingerprint",action="clear"}'}, $VIOLATION,
	'text: fingerprint violations, cleared');
is(sum_of(\%m, 'paranoid_session_violations_total'), $VIOLATION,
	'text: no other violations');

my $commands = sum_of(\%m, 'paranoid_session_store_commands_total');
cmp_ok($commands, '>', 0, 'text: store commands counted');
is($m{'paranoid_session_store_latency_seconds_count'}, $commands,
	'text: one latency observation per store command');
is($m{'paranoid_session_store_latency_seconds_bucket{le="+Inf"}'}, $commands,
	'text: +Inf bucket holds them all');

# promtool reads the exposition as Prometheus does and lints it

my ($rc, $lint) = promtool_check($text);
is($rc, 0, 'promtool check metrics: exit 0');
is($lint, '', 'promtool check metrics: no problems');

# the alert rules README offers use these metrics and are valid rules
my $rules = "$FindBin::Bin/../nginx-conf/prometheus-alerts.yml";
my $checked = `$PROMTOOL check rules $rules 2>&1`;
is($? >> 8, 0, 'promtool check rules: the example alerts') or diag($checked);

# the metrics location is not a checked request

my %again = samples(http_content(http_get('/metrics')) // '');
is(sum_of(\%again, 'paranoid_session_requests_total'),
	$NEW + $VALID + $VIOLATION, 'fetching metrics is not counted');

# the JSON variant: the same values

$r = http_get('/metrics?format=json');
like($r, qr!^Content-Type: application/json\b!mi, 'json: content type');
my $json = eval { JSON::PP->new->decode(http_content($r) // '') };
ok(ref $json eq 'HASH', 'json: parses') or diag($@);
$json = {} unless ref $json eq 'HASH';

my @mismatch;
for my $status (keys %{$json->{requests} // {}}) {
	push @mismatch, "requests $status" if $json->{requests}{$status}
		!= ($m{"paranoid_session_requests_total{status=\"$status\"}"} // -1);
}
is(scalar keys %{$json->{requests} // {}}, 8, 'json: eight statuses');
is(join(', ', @mismatch), '', 'json: requests agree with the text');
is($json->{requests}{new}, $NEW, 'json: new requests');
is($json->{violations}{fingerprint}{clear}, $VIOLATION,
	'json: fingerprint violations');
is(sum(values %{$json->{store}{commands} // {}}), $commands,
	'json: store commands agree with the text');
is($json->{store}{latency}{count}, $commands, 'json: latency count');
cmp_ok($json->{store}{latency}{sum} // -1, '==',
	$m{'paranoid_session_store_latency_seconds_sum'} // -2,
	'json: latency sum agrees with the text');
is($json->{store}{latency}{buckets}[-1]{le}, '+Inf', 'json: last bucket');

# a real Prometheus server scrapes the endpoint

my $PROM = '127.0.0.1:' . port(8090);
my $TARGET = '127.0.0.1:' . port(8080);

$t->write_file('prometheus.yml', <<"EOF");
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s

scrape_configs:
  - job_name: paranoid
    metrics_path: /metrics
    static_configs:
      - targets: ['$TARGET']
EOF

$t->run_daemon(sub {
	# its log, shown if it never scrapes the endpoint
	open STDOUT, '>', "$d/prometheus.log" or POSIX::_exit(255);
	open STDERR, '>&', \*STDOUT;
	exec { $PROMETHEUS } $PROMETHEUS,
		"--config.file=$d/prometheus.yml",
		"--storage.tsdb.path=$d/prometheus-data",
		"--web.listen-address=$PROM"
		or print "Can't exec $PROMETHEUS: $!\n";
	POSIX::_exit(255);
});

my $ua = HTTP::Tiny->new(timeout => 5, proxy => undef, http_proxy => undef);

# up == 1 once it has scraped the endpoint (at most 30 s)
my $up;
for (1 .. 150) {
	my $res = query('up{job="paranoid"}');
	$up = $res->[0]{value}[1] if $res && @$res;
	last if defined $up && $up eq '1';
	select undef, undef, undef, 0.2;
}
is($up, '1', 'prometheus: up == 1')
	or diag($t->read_file('prometheus.log'));

is(value('paranoid_session_requests_total{status="new"}'), $NEW,
	'prometheus: new requests');
is(value('paranoid_session_requests_total{status="valid"}'), $VALID,
	'prometheus: valid requests');
is(value('sum(paranoid_session_requests_total)'),
	$NEW + $VALID + $VIOLATION, 'prometheus: its scrapes are not counted');
is(value('sum(paranoid_session_violations_total{reason="fingerprint"})'),
	$VIOLATION, 'prometheus: fingerprint violations');
is(value('paranoid_session_violations_total'
	. '{reason="fingerprint",action="clear"}'),
	$VIOLATION, 'prometheus: by action');
is(value('sum(paranoid_session_store_commands_total)'), $commands,
	'prometheus: store commands');
is(value('paranoid_session_store_latency_seconds_count'), $commands,
	'prometheus: histogram count');
is(value('sum(paranoid_session_store_latency_seconds_count)'
	. ' - sum(paranoid_session_store_commands_total)'), 0,
	'prometheus: histogram count == sum of store commands');
my $q = value('histogram_quantile(0.5, '
	. 'paranoid_session_store_latency_seconds_bucket)');
ok(defined $q && $q =~ /^[0-9.e+-]+\z/ && $q > 0 && $q <= 1,
	'prometheus: the histogram\'s buckets make a quantile')
	or diag("quantile: " . ($q // 'none'));

# the types as Prometheus reads them from TYPE lines

my $meta = get_api('/api/v1/metadata');
my %types = map { $_ => ($meta->{$_}[0]{type} // '') } keys %{$meta // {}};
is($types{paranoid_session_requests_total}, 'counter',
	'prometheus: requests, a counter');
is($types{paranoid_session_store_latency_seconds}, 'histogram',
	'prometheus: latency, a histogram');
is($types{paranoid_session_store_connections}, 'gauge',
	'prometheus: connections, a gauge');

###############################################################################

# Samples of a text exposition: { 'name{labels}' => value }.
sub samples {
	my ($text) = @_;
	my %s;
	for (split /\n/, $text) {
		next if /^#/ || !/\S/;
		my ($key, $value) = /^(\S+)\s+(\S+)$/ or next;
		$s{$key} = $value;
	}
	return %s;
}

sub sum { my $s = 0; $s += $_ for @_; return $s }

# The sum of every sample of metric $name (all its labels).
sub sum_of {
	my ($s, $name) = @_;
	return sum(map { $s->{$_} } grep { /^\Q$name\E(?:\{|\z)/ } keys %$s);
}

# Runs `promtool check metrics` on $text (its stdin): exit code and output.
sub promtool_check {
	my ($text) = @_;
	my $file = "$d/metrics.txt";
	open my $fh, '>', $file or die "Can't create $file: $!\n";
	print $fh $text;
	close $fh;
	my $pid = open(my $out, '-|') // die "Can't fork: $!\n";
	if ($pid == 0) {
		open STDERR, '>&', \*STDOUT;
		open STDIN, '<', $file or print "Can't open $file: $!\n";
		exec { $PROMTOOL } $PROMTOOL, 'check', 'metrics'
			or print "Can't exec $PROMTOOL: $!\n";
		POSIX::_exit(255);
	}
	my $output = do { local $/; <$out> } // '';
	close $out;
	return ($? >> 8, $output);
}

# The data of a Prometheus HTTP API answer, undef unless "success".
sub get_api {
	my ($path) = @_;
	my $res = $ua->get("http://$PROM$path");
	return undef unless $res->{success};
	my $body = eval { JSON::PP->new->decode($res->{content}) };
	return undef unless ref $body eq 'HASH' && ($body->{status} // '') eq
		'success';
	return $body->{data};
}

# The result vector of an instant query.
sub query {
	my ($expr) = @_;
	my $data = get_api('/api/v1/query?query=' . uri_escape($expr));
	return $data && ref $data->{result} eq 'ARRAY' ? $data->{result} : undef;
}

# The value of a query expected to answer one sample.
sub value {
	my ($expr) = @_;
	my $res = query($expr);
	return undef unless $res && @$res == 1;
	return $res->[0]{value}[1];
}

sub uri_escape {
	my ($s) = @_;
	$s =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
	return $s;
}

###############################################################################
