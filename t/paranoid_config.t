#!/usr/bin/perl

# Tests for paranoid_session module: configuration.
# Every directive accepts its documented values, and every wrong value makes
# "nginx -t" fail with a message naming the directive and what is wrong.

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

my $t = Test::Nginx->new()->has(qw/http/);
my $d = $t->testdir();

$t->write_file('short.key', 'x' x 31);
$t->write_file('good.key', join('', map { chr(65 + $_ % 26) } 0 .. 47) . "\n");
mkdir "$d/dir.key";

# Each case: [ name, http-level lines, location-level lines, expected error ].
# A case's http lines replace the default store line when they mention
# paranoid_session_store.

my @invalid = (
	['flag value', '', 'paranoid_session maybe;',
		qr/"paranoid_session" directive is invalid: "maybe"/],
	['session arguments', '', 'paranoid_session on off;',
		qr/invalid number of arguments in "paranoid_session"/],
	['timeout unit', '', 'paranoid_session_store_timeout 10x;',
		qr/"paranoid_session_store_timeout" directive is invalid: .*"10x"/],
	['timeout zero', '', 'paranoid_session_store_timeout 0;',
		qr/"paranoid_session_store_timeout" directive is invalid: .*"0"/],
	['timeout too long', '', 'paranoid_session_store_timeout 5m;',
		qr/"paranoid_session_store_timeout" directive is invalid: .*"5m"/],
	['timeout negative', '', 'paranoid_session_store_timeout -1s;',
		qr/"paranoid_session_store_timeout" directive is invalid: .*"-1s"/],
	['keepalive negative', 'paranoid_session_store_keepalive -1;', '',
		qr/"paranoid_session_store_keepalive" directive is invalid: .*"-1"/],
	['keepalive huge', 'paranoid_session_store_keepalive 100000;', '',
		qr/"paranoid_session_store_keepalive" directive is invalid: .*"100000"/],
	['keepalive context', '', 'paranoid_session_store_keepalive 4;',
		qr/"paranoid_session_store_keepalive" directive is not allowed here/],
	['store context', '', 'paranoid_session_store 127.0.0.1:11211;',
		qr/"paranoid_session_store" directive is not allowed here/],
	['metrics context', 'paranoid_session_metrics;', '',
		qr/"paranoid_session_metrics" directive is not allowed here/],
	['metrics arguments', '', 'paranoid_session_metrics json;',
		qr/invalid number of arguments in "paranoid_session_metrics"/],
	['store no port', 'paranoid_session_store 127.0.0.1;', '',
		qr/"paranoid_session_store" directive is invalid: .*"127.0.0.1"/],
	['store bad port', 'paranoid_session_store 127.0.0.1:99999;', '',
		qr/"paranoid_session_store" directive is invalid: .*99999/],
	['store bare ipv6', 'paranoid_session_store ::1:11211;', '',
		qr/"paranoid_session_store" directive is invalid: .*::1:11211/],
	['store relative unix', 'paranoid_session_store unix:relative.sock;', '',
		qr/"paranoid_session_store" directive is invalid: .*relative\.sock/],
	['store unknown host',
		'paranoid_session_store no-such-host.invalid:11211;', '',
		qr/"paranoid_session_store" directive is invalid: .*no-such-host/],
	['store listed twice',
		'paranoid_session_store 127.0.0.1:11211 127.0.0.1:11211;', '',
		qr/"paranoid_session_store" directive is invalid: .*twice/],
	['store listed twice by name',
		'paranoid_session_store 127.0.0.1:11211 localhost:11211;', '',
		qr/"paranoid_session_store" directive is invalid: .*"localhost:11211" is listed twice/],
	['store port zero', 'paranoid_session_store 127.0.0.1:0;', '',
		qr/"paranoid_session_store" directive is invalid: invalid port in "127.0.0.1:0"/],
	['store ipv6 no port', 'paranoid_session_store [::1];', '',
		qr/"paranoid_session_store" directive is invalid: no port in "\[::1\]"/],
	['store bad ipv6', 'paranoid_session_store [zz]:1;', '',
		qr/"paranoid_session_store" directive is invalid: invalid IPv6 address in "\[zz\]:1"/],
	['store no host', 'paranoid_session_store :11211;', '',
		qr/"paranoid_session_store" directive is invalid: no host in ":11211"/],
	['store numeric host', 'paranoid_session_store 1234:11211;', '',
		qr/"paranoid_session_store" directive is invalid: invalid IPv4 address in "1234:11211"/],
	['store bad host', 'paranoid_session_store a_b:11211;', '',
		qr/"paranoid_session_store" directive is invalid: invalid host in "a_b:11211"/],
	['store with uri', 'paranoid_session_store 127.0.0.1:11211/x;', '',
		qr/"paranoid_session_store" directive is invalid: invalid host in "127.0.0.1:11211\/x"/],
	['store duplicate',
		"paranoid_session_store 127.0.0.1:11211;\n"
		. "paranoid_session_store 127.0.0.1:11212;", '',
		qr/"paranoid_session_store" directive is duplicate/],
	['failure policy', '', 'paranoid_session_store_failure maybe;',
		qr/"paranoid_session_store_failure" directive is invalid: .*"maybe"/],
	['key prefix space', '', 'paranoid_session_key_prefix "a b";',
		qr/"paranoid_session_key_prefix" directive is invalid/],
	['key prefix long', '', 'paranoid_session_key_prefix ' . 'k' x 200 . ';',
		qr/"paranoid_session_key_prefix" directive is invalid/],
	['secret missing', '', "paranoid_session_secret_file $d/none.key;",
		qr/"paranoid_session_secret_file" directive is invalid: .*none\.key/],
	['secret short', '', "paranoid_session_secret_file $d/short.key;",
		qr/"paranoid_session_secret_file" directive is invalid: .*31 bytes/],
	['secret unreadable', '', "paranoid_session_secret_file $d/dir.key;",
		qr/"paranoid_session_secret_file" directive is invalid: .*dir\.key/],
	['fingerprint constant', '', 'paranoid_fingerprint $remote_addr foo;',
		qr/"paranoid_fingerprint" directive is invalid: "foo" holds no variable/],
	['fingerprint unknown variable', '', 'paranoid_fingerprint $no_such_var;',
		qr/unknown "no_such_var" variable/],
	['ip prefix v4', '', 'paranoid_fingerprint_ip_prefix 33 64;',
		qr/"paranoid_fingerprint_ip_prefix" directive is invalid: .*"33"/],
	['ip prefix v6', '', 'paranoid_fingerprint_ip_prefix 24 129;',
		qr/"paranoid_fingerprint_ip_prefix" directive is invalid: .*"129"/],
	['nonce timeout', '', 'paranoid_nonce_timeout -1;',
		qr/"paranoid_nonce_timeout" directive is invalid: .*"-1"/],
	['nonce window negative', '', 'paranoid_nonce_window -1;',
		qr/"paranoid_nonce_window" directive is invalid: .*"-1"/],
	['nonce window huge', '', 'paranoid_nonce_window 17;',
		qr/"paranoid_nonce_window" directive is invalid: .*"17"/],
	['nonce window text', '', 'paranoid_nonce_window abc;',
		qr/"paranoid_nonce_window" directive is invalid: .*"abc"/],
	['nonce window timeout', '', 'paranoid_nonce_window_timeout 2h;',
		qr/"paranoid_nonce_window_timeout" directive is invalid: .*"2h"/],
	['key timeout zero', '', 'paranoid_key_timeout 0;',
		qr/"paranoid_key_timeout" directive is invalid: .*"0"/],
	['idle timeout zero', '', 'paranoid_idle_timeout 0;',
		qr/"paranoid_idle_timeout" directive is invalid: .*"0"/],
	['absolute timeout overflow', '',
		'paranoid_absolute_timeout 99999999999999999999y;',
		qr/"paranoid_absolute_timeout" directive is invalid/],
	['cookie name', '', 'paranoid_cookie "se;ssion";',
		qr/"paranoid_cookie" directive is invalid: .*se;ssion/],
	['cookie attribute', '', 'paranoid_cookie sid secure=yes;',
		qr/"paranoid_cookie" directive is invalid: .*"secure=yes"/],
	['cookie samesite', '', 'paranoid_cookie sid samesite=whatever;',
		qr/"paranoid_cookie" directive is invalid: .*whatever/],
	['cookie duplicate attribute', '', 'paranoid_cookie sid path=/a path=/b;',
		qr/"paranoid_cookie" directive is invalid: .*path/],
	['samesite none without secure', '',
		"paranoid_cookie sid samesite=none;\nparanoid_cookie_secure off;",
		qr/samesite=none needs the Secure flag/],
	['host prefix with domain', '',
		'paranoid_cookie sid prefix=__Host- domain=example.com;',
		qr/"paranoid_cookie" directive is invalid: .*__Host-/],
	['host prefix without secure', '',
		"paranoid_cookie sid prefix=__Host-;\nparanoid_cookie_secure off;",
		qr/prefix=__Host- needs the Secure flag/],
	['nonce cookie clash', '', 'paranoid_nonce_cookie sessionid;',
		qr/both name the cookie "sessionid"/],
	['secure cookie name', '', 'paranoid_secure_cookie "a b";',
		qr/"paranoid_secure_cookie" directive is invalid/],
	['secure cookie prefix case', '', 'paranoid_secure_cookie __secure-k;',
		qr/"paranoid_secure_cookie" directive is invalid: .*"__Secure-"/],
	['secure cookie prefix only', '', 'paranoid_secure_cookie __Secure-;',
		qr/"paranoid_secure_cookie" directive is invalid: .*nothing after/],
	['secure cookie host prefix with path', '',
		"paranoid_cookie sid path=/app;\nparanoid_secure_cookie __Host-k;",
		qr/paranoid_secure_cookie "__Host-k" needs paranoid_cookie path=\//],
	['secure cookie clash after prefix', '',
		"paranoid_cookie k prefix=__Secure-;\nparanoid_secure_cookie __Secure-k;",
		qr/paranoid_secure_cookie "__Secure-k" is already used/],
	['cookie secure mode', '', 'paranoid_cookie_secure maybe;',
		qr/"paranoid_cookie_secure" directive is invalid: .*"maybe"/],
	['violation action', '', 'paranoid_on_violation kill;',
		qr/"paranoid_on_violation" directive is invalid: .*"kill"/],
	['rotate and destroy', '',
		"paranoid_session_rotate on;\nparanoid_session_destroy on;",
		qr/cannot both be on/],
	['no store', 'paranoid_session_store_keepalive 1;', 'paranoid_session on;',
		qr/no "paranoid_session_store" is defined/, 'no store'],
	['duplicate directive', '',
		"paranoid_nonce_window 1;\nparanoid_nonce_window 2;",
		qr/"paranoid_nonce_window" directive is duplicate/],
	['harden flag', '', 'paranoid_harden_cookies yes;',
		qr/"paranoid_harden_cookies" directive is invalid: "yes"/],
);

$t->plan(2 + 2 * @invalid);

###############################################################################

sub conf {
	my ($http, $location, $no_store) = @_;
	my $store = $no_store ? '' : 'paranoid_session_store 127.0.0.1:11211;';

	return <<"EOF";

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    $store
    $http

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        location / {
            $location
        }
    }
}

EOF
}

# Runs "nginx -t" on a configuration; returns (exit status, output).
sub nginx_t {
	my ($t, $name, $conf) = @_;
	my $d = $t->testdir();
	$t->write_file_expand($name, $conf);
	my $out = `$Test::Nginx::NGINX -p $d/ -c $d/$name -t 2>&1`;
	return ($? >> 8, $out);
}

my $n = 0;
for my $case (@invalid) {
	my ($name, $http, $location, $re, $no_store) = @$case;
	$no_store ||= $http =~ /paranoid_session_store\s/;
	my ($rc, $out) = nginx_t($t, 'bad' . $n++ . '.conf',
		conf($http, $location, $no_store));
	isnt($rc, 0, "$name: rejected");
	like($out, $re, "$name: message") or diag($out);
}

# Every directive with a valid, non-default value, at the levels it allows.

my ($rc, $out) = nginx_t($t, 'good.conf', conf(<<"HTTP", <<'LOCATION', 1));
    paranoid_session_store 127.0.0.1:11211 [::1]:11212 unix:$d/mc.sock localhost:11213;
    paranoid_session_store_keepalive 4;
    paranoid_session_store_timeout 250ms;
    paranoid_session_store_failure allow;
    paranoid_session_key_prefix app1:;
    paranoid_session_secret_file $d/good.key;
    paranoid_fingerprint \$remote_addr "\$http_user_agent|\$http_accept_language";
    paranoid_fingerprint_ip_prefix 24 64;
    paranoid_nonce_timeout 0;
    paranoid_nonce_window 3;
    paranoid_nonce_window_timeout 2s;
    paranoid_key_timeout 15m;
    paranoid_idle_timeout 1h30m;
    paranoid_absolute_timeout 1d;
    paranoid_cookie sid path=/ samesite=strict prefix=__Host-;
    paranoid_nonce_cookie snonce;
    paranoid_secure_cookie __Secure-sid_tls;
    paranoid_cookie_secure on;
    paranoid_on_violation deny;
    paranoid_harden_cookies on;

    map \$paranoid_session_status \$session_known {
        valid    1;
        default  0;
    }
    log_format paranoid '\$remote_addr \$paranoid_session_uid '
                        '\$paranoid_session_status \$paranoid_session_violation';
HTTP
            paranoid_session on;
            paranoid_session_bypass $http_x_bypass $arg_nocheck;
            paranoid_session_bypass $cookie_nocheck;
            paranoid_nonce_timeout off;
            paranoid_key_timeout off;
            paranoid_secure_cookie off;
            paranoid_fingerprint off;
            paranoid_cookie sessionid domain=example.com path=/app samesite=none;
            paranoid_on_violation log;
            access_log %%TESTDIR%%/access.log paranoid;
            add_header X-Uid $paranoid_session_uid;
            if ($paranoid_session_violation) {
                return 403;
            }

            location /in {
                paranoid_session_rotate on;
            }
            location /out {
                # Flags ignore case, as nginx's own do.
                paranoid_session_destroy ON;
                paranoid_harden_cookies Off;
            }
LOCATION

is($rc, 0, 'every directive accepted') or diag($out);
like($out, qr/test is successful/, 'nginx -t successful');

###############################################################################
