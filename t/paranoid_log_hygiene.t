#!/usr/bin/perl

# Tests for paranoid_session module: what the error log says. Each
# violation is one line at warn with its reason, the client address and the
# first 8 hex chars of the uid; no token, nonce or secure key value ever
# reaches the log, at any level, debug included.

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

my $t = Test::Nginx->new()->has(qw/http realip http_ssl socket_ssl/)
	->has_daemon('memcached')->has_daemon('openssl');

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
        listen       127.0.0.1:8443 ssl;
        server_name  localhost;

        ssl_certificate     localhost.crt;
        ssl_certificate_key localhost.key;

        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;

        paranoid_nonce_timeout 0;
        paranoid_key_timeout 1s;

        location /clear {
            paranoid_session on;
        }

        location /deny {
            paranoid_session on;
            paranoid_on_violation deny;
        }

        location /log {
            paranoid_session on;
            paranoid_on_violation log;
        }

        location /logout {
            paranoid_session on;
            paranoid_session_destroy on;
        }

        location /login {
            paranoid_session on;
            paranoid_session_rotate on;
        }
    }
}

EOF

$t->write_file($_, $_) for qw/ clear deny log logout login /;
make_cert($t, 'localhost');

memcached_start($t, 11211);
$t->run();

$t->plan(8);

###############################################################################

# Every value the clients were given in a Set-Cookie.
my %secrets;
sub collect {
	my ($r) = @_;
	for my $c (values %{set_cookies($r)}) {
		$secrets{$c->{value}} = 1 if length $c->{value};
	}
	return $r;
}

# A session at $uri from $ip, used a couple of times; returns the browser
# and its uid.
sub session_at {
	my ($uri, $ip, %opts) = @_;
	my $b = browser(ua => 'Owner/1.0', ip => $ip, %opts);
	collect($b->get($uri)) for 1 .. 2;
	return ($b, session_vars($b->last_response)->{uid} // '');
}

# The violations made below: [ reason, client address, uid, variable seen ].
my @violations;
sub violate {
	my ($reason, $b, $uid, $uri, %opts) = @_;
	my $ip = $opts{ip} // $b->{ip};
	my $r = collect($b->get($uri, %opts));
	push @violations, [ $reason, $ip, $uid,
		session_vars($r)->{violation} // '' ];
}

my $n = 0;
for my $mode (qw/ clear deny log /) {
	for my $ssl (0, 1) {
		# fingerprint: another User-Agent from another address
		my ($b, $uid) = session_at("/$mode", '10.1.0.' . ++$n, ssl => $ssl);
		violate('fingerprint', $b->clone(ua => 'Thief/1.0'), $uid, "/$mode",
			ip => '10.2.0.' . $n);

		# nonce: an unknown one
		($b, $uid) = session_at("/$mode", '10.1.0.' . ++$n, ssl => $ssl);
		violate('nonce', $b->clone, $uid, "/$mode",
			add => { sessionnonce => 'A' x 22 });

		next unless $ssl;

		# secure key: absent over https
		($b, $uid) = session_at("/$mode", '10.1.0.' . ++$n, ssl => 1);
		violate('secure_key', $b->clone, $uid, "/$mode",
			drop => ['__Secure-sessionid_https']);
	}
}

# more ordinary traffic: cycling, rotation, logout, an invented token

my ($b) = session_at('/clear', '10.3.0.1');
select undef, undef, undef, 1.1;
collect($b->get('/clear')) for 1 .. 2;
collect($b->get('/login'));
collect($b->get('/logout'));
collect(get_with('/clear', cookie_header(sessionid => 'B' x 43)));

$t->stop();

###############################################################################

is(join(' ', map { $_->[3] eq $_->[0] ? () : "$_->[0]/$_->[3]" } @violations),
	'', scalar(@violations) . ' violations seen as such by the client');

# nginx built --with-debug logs request and response headers itself at
# debug level (cookies included); those lines are nginx's, not the module's,
# and are left out.

my $log = $t->read_file('error.log');
my $build = `$Test::Nginx::NGINX -V 2>&1`;
my @entries = split /^(?=\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d )/m, $log;
if ($build =~ /--with-debug/) {
	my $dump = qr/(?:http header: "|HTTP\/1\.[01] \d{3} |http proxy header:)/;
	@entries = grep { !/\] \d+#\d+: \*\d+ $dump/ } @entries;
}
my $text = join '', @entries;

my @leaks;
for my $secret (sort keys %secrets) {
	my $hex = b64url_hex($secret);
	push @leaks, $secret if index($text, $secret) >= 0
		|| defined $hex && length $hex >= 32 && index(lc $text, $hex) >= 0;
}
cmp_ok(scalar keys %secrets, '>=', 40,
	scalar(keys %secrets) . ' cookie values collected');
is(scalar @leaks, 0, 'no token, nonce or secure key in the log')
	or diag("leaked: @leaks");

# one warn line per violation, with reason, address and uid prefix

my @warn = grep { /\[warn\]/ && /fingerprint|nonce|secure_key/ }
	split /\n/, $log;
is(scalar @warn, scalar @violations, 'one warn line per violation');

my (@missing, @twice);
for my $v (@violations) {
	my ($reason, $ip, $uid) = @$v;
	my $short = substr($uid, 0, 8);
	my @lines = grep { /\b\Q$reason\E\b/ && /\Q$ip\E\b/ && /\Q$short\E/ }
		@warn;
	push @missing, "$reason/$ip" unless @lines;
	push @twice, "$reason/$ip" if @lines > 1;
}
is("@missing", '', 'each violation logged with reason, client and uid');
is("@twice", '', 'each violation logged once');

# the uid is shortened there

my @long = grep { my $l = $_; grep { index($l, $_->[2]) >= 0 } @violations }
	@warn;
is(scalar @long, 0, 'warn lines carry only the uid prefix');

# warn, not error or above: a violation is the client's doing

like($log, qr/\[warn\].*fingerprint/, 'violations at warn level');

###############################################################################
