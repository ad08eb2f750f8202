#!/usr/bin/perl

# Tests for paranoid_session module: paranoid_harden_cookies. Every
# Set-Cookie from the upstream gains HttpOnly, Secure over HTTPS only, and
# SameSite=Lax unless it has a SameSite already; what it has is kept, and
# nothing is added twice.

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

my $t = Test::Nginx->new()->has(qw/http proxy http_ssl socket_ssl/)
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

        location /app {
            paranoid_harden_cookies on;
            proxy_pass http://127.0.0.1:8081;
        }

        location /session {
            paranoid_session on;
            paranoid_harden_cookies on;
            proxy_pass http://127.0.0.1:8081;
        }

        location /plain {
            proxy_pass http://127.0.0.1:8081;
        }
    }

    server {
        listen       127.0.0.1:8081;
        server_name  localhost;

        location / {
            add_header Set-Cookie "a=1";
            add_header Set-Cookie "b=2; HttpOnly; SameSite=Strict";
            add_header Set-Cookie "c=3; Path=/x; secure; samesite=none";
            add_header Set-Cookie "d=4; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Domain=example.com";
            return 200 "upstream";
        }
    }
}

EOF

make_cert($t, 'localhost');

memcached_start($t, 11211);
$t->run();

$t->plan(24);

###############################################################################

sub https_get {
	my ($uri) = @_;
	return http("GET $uri HTTP/1.0\r\nHost: localhost\r\n\r\n",
		SSL => 1, PeerAddr => '127.0.0.1:' . port(8443));
}

# Checks one hardened cookie: attribute => expected value (undef: absent),
# each present attribute exactly once.
sub hardened {
	my ($c, $name, $value, $want, $label) = @_;
	my $got = $c->{$name};
	is($got && $got->{value}, $value, "$label: $name value kept");
	my @bad;
	for my $attr (sort keys %$want) {
		my $have = $got ? $got->{attrs}{$attr} : undef;
		my $n = $got ? $got->{count}{$attr} // 0 : 0;
		if (defined $want->{$attr}) {
			push @bad, "$attr: " . ($have // 'absent')
				unless defined $have && lc $have eq lc $want->{$attr}
				&& $n == 1;
		} else {
			push @bad, "$attr present" if $n;
		}
	}
	is("@bad", '', "$label: $name attributes");
}

# plain http

my $r = http_get('/app');
like($r, qr/^HTTP\/1\.1 200 .*upstream$/s, 'http: proxied');
my $c = set_cookies($r);
hardened($c, a => 1, { httponly => '', samesite => 'Lax', secure => undef },
	'http');
hardened($c, b => 2,
	{ httponly => '', samesite => 'Strict', secure => undef }, 'http');
hardened($c, c => 3, { httponly => '', samesite => 'none', secure => '',
	path => '/x' }, 'http');
hardened($c, d => 4, { httponly => '', samesite => 'Lax', secure => undef,
	domain => 'example.com', expires => 'Wed, 21 Oct 2037 07:28:00 GMT' },
	'http');
is(scalar(set_cookie_lines($r)), 4, 'http: four cookies, none added');
like($c->{a}{line} // '', qr/^a=1;/, 'http: name and value first');

# https: Secure as well

$r = https_get('/app');
$c = set_cookies($r);
hardened($c, a => 1, { httponly => '', samesite => 'Lax', secure => '' },
	'https');
hardened($c, b => 2, { httponly => '', samesite => 'Strict', secure => '' },
	'https');
hardened($c, c => 3, { httponly => '', samesite => 'none', secure => '',
	path => '/x' }, 'https');
hardened($c, d => 4, { httponly => '', samesite => 'Lax', secure => '',
	domain => 'example.com' }, 'https');

# off: untouched

$r = http_get('/plain');
is(join('|', set_cookie_lines($r)), join('|', 'a=1',
	'b=2; HttpOnly; SameSite=Strict', 'c=3; Path=/x; secure; samesite=none',
	'd=4; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Domain=example.com'),
	'off: upstream cookies untouched');

# with a session: the module's own cookies as always, the upstream's
# hardened

$r = http_get('/session');
$c = set_cookies($r);
like($r, qr/^Set-Cookie: sessionid=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; (?x)
	SameSite=Lax\r$/m, 'session: token cookie as always');
is(set_cookie_count($r, 'sessionid'), 1, 'session: token cookie once');
hardened($c, a => 1, { httponly => '', samesite => 'Lax', secure => undef },
	'session');

###############################################################################
