#!/usr/bin/perl

# Tests for paranoid_session module: under paranoid_on_violation deny the
# 403 of the access phase is not the last word: "satisfy any" with an
# allow rule lets the request go on, and "error_page 403 = /uri" sends it
# elsewhere. Either way the request that stole a session must not carry
# the victim's uid: $paranoid_session_uid is empty for it, in the headers
# the application gets and in add_header. Under clear it carries the uid
# of the fresh session it got, under log (by design) the victim's.

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

my $t = Test::Nginx->new()->has(qw/http proxy access/)
	->has_daemon('memcached');

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
        add_header X-Violation "[$paranoid_session_violation]" always;

        paranoid_nonce_timeout off;

        # the application: told the session's uid
        proxy_set_header X-Session-Uid $paranoid_session_uid;

        # satisfy any: the address rule lets the request through whatever
        # the module answered
        location /any/deny {
            paranoid_session on;
            paranoid_on_violation deny;
            satisfy any;
            allow 127.0.0.1;
            deny all;
            proxy_pass http://127.0.0.1:%%PORT_8081%%/app;
        }

        location /any/clear {
            paranoid_session on;
            paranoid_on_violation clear;
            satisfy any;
            allow 127.0.0.1;
            deny all;
            proxy_pass http://127.0.0.1:%%PORT_8081%%/app;
        }

        location /any/log {
            paranoid_session on;
            paranoid_on_violation log;
            satisfy any;
            allow 127.0.0.1;
            deny all;
            proxy_pass http://127.0.0.1:%%PORT_8081%%/app;
        }

        # error_page: the 403 becomes a request to the application
        location /page/deny {
            paranoid_session on;
            paranoid_on_violation deny;
            error_page 403 = /fallback;
            proxy_pass http://127.0.0.1:%%PORT_8081%%/app;
        }

        location /page/clear {
            paranoid_session on;
            paranoid_on_violation clear;
            error_page 403 = /fallback;
            proxy_pass http://127.0.0.1:%%PORT_8081%%/app;
        }

        location /page/log {
            paranoid_session on;
            paranoid_on_violation log;
            error_page 403 = /fallback;
            proxy_pass http://127.0.0.1:%%PORT_8081%%/app;
        }

        location = /fallback {
            proxy_pass http://127.0.0.1:%%PORT_8081%%/fallback;
        }
    }

    # the application: echoes the uid it was told
    server {
        listen       127.0.0.1:8081;
        server_name  localhost;

        location / {
            return 200 "$uri uid=[$http_x_session_uid]\n";
        }
    }
}

EOF

memcached_start($t, 11211);
$t->run();

$t->plan(30);

###############################################################################

my $UID = qr/[0-9a-f]{32}/;

# What the application saw: the location it served and the uid it got.
sub app {
	my ($r) = @_;
	my ($uri, $uid) = ($r // '') =~ /\r\n\r\n(\S+) uid=\[([^\]]*)\]$/m;
	return { uri => $uri // '', uid => $uid };
}

# A victim's session at $uri and a thief's request with its cookies from
# another User-Agent: the victim's uid, the thief's response.
sub stolen {
	my ($uri) = @_;
	my $victim = browser();
	my $uid = session_vars($victim->get($uri))->{uid} // '';
	my $r = $victim->clone(ua => 'ThiefBrowser/6.6')->get($uri);
	return ($uid, $r);
}

for my $via (qw/ any page /) {

	# deny: the request may go on, but without the victim's uid

	my ($uid, $r) = stolen("/$via/deny");
	my $v = session_vars($r);
	my $app = app($r);
	like($uid, qr/^$UID\z/, "$via deny: victim had a session");
	is($v->{status}, 'violation', "$via deny: violation");
	is($v->{violation}, 'fingerprint', "$via deny: reason");
	is($v->{code}, 200, "$via deny: nginx let the request through");
	like($app->{uri}, qr/^\/(app|fallback)\z/,
		"$via deny: the application answered");
	is($app->{uid}, '', "$via deny: application got no uid");
	is($v->{uid}, '', "$via deny: \$paranoid_session_uid empty");

	# clear: a fresh session's uid

	($uid, $r) = stolen("/$via/clear");
	$v = session_vars($r);
	$app = app($r);
	is($v->{violation}, 'fingerprint', "$via clear: violation");
	like($app->{uid} // '', qr/^$UID\z/, "$via clear: application got a uid");
	isnt($app->{uid}, $uid, "$via clear: not the victim's");
	is($v->{uid}, $app->{uid}, "$via clear: the same in add_header");

	# log: processed as the victim's request, by design

	($uid, $r) = stolen("/$via/log");
	$v = session_vars($r);
	$app = app($r);
	is($v->{violation}, 'fingerprint', "$via log: violation");
	is($app->{uid}, $uid, "$via log: application got the victim's uid");
	is($v->{uid}, $uid, "$via log: the same in add_header");
}

# error_page sent the denied request to the fallback, the others to the
# application

my ($uid, $r) = stolen('/page/deny');
is(app($r)->{uri}, '/fallback', 'page deny: through error_page');
($uid, $r) = stolen('/any/deny');
is(app($r)->{uri}, '/app', 'any deny: through satisfy any');

###############################################################################
