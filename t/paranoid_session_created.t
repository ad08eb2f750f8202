#!/usr/bin/perl

# Tests for paranoid_session module: $paranoid_session_created. A new
# session carries the time it began (Unix seconds, read between the test's
# own clock readings before and after the request); the value stays the
# same through later requests, a rotation and a login by the application;
# a thief cleared under "clear" gets a session of its own with its own
# time; under "deny", after a logout and where the module is off or
# bypassed, the variable is empty.

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

my $t = Test::Nginx->new()->has(qw/http proxy/)->has_daemon('memcached');

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
        add_header X-Created "[$paranoid_session_created]" always;

        paranoid_session on;
        paranoid_fingerprint $http_user_agent;

        location /deny {
            paranoid_on_violation deny;
        }

        location /rotate {
            paranoid_session_rotate on;
        }

        location /bypass {
            paranoid_session_bypass 1;
        }

        location /off {
            paranoid_session off;
        }

        location /app/ {
            proxy_pass http://127.0.0.1:%%PORT_8081%%/;
        }
    }

    server {
        listen       127.0.0.1:8081;
        server_name  localhost;

        location = /login {
            add_header X-Paranoid-Session "login user=alice";
            return 200 "in\n";
        }

        location = /logout {
            add_header X-Paranoid-Session "logout";
            return 200 "out\n";
        }
    }
}

EOF

$t->write_file($_, $_) for qw/ index.html deny rotate bypass off /;

memcached_start($t, 11211);
$t->run();

$t->plan(14);

###############################################################################

sub created { return ($_[0] =~ /^X-Created: \[([^\]]*)\]/m)[0] }

# A request timed by the test's clock: the response, and whole seconds
# before and after it.
sub timed {
	my ($b, $uri) = @_;
	my $before = int(time());
	my $r = $b->get($uri);
	return ($r, $before, int(time()));
}

my $b = browser();
my ($r, $before, $after) = timed($b, '/');
my $born = created($r);
is(session_vars($r)->{status}, 'new', 'new session');
ok($born =~ /^\d+$/ && $born >= $before && $born <= $after,
	"new: created $born within [$before, $after]");

select undef, undef, undef, 1.1;
$r = $b->get('/');
is(session_vars($r)->{status}, 'valid', 'valid a second later');
is(created($r), $born, 'valid: the same time');

$r = $b->get('/rotate');
is(session_vars($r)->{status}, 'rotated', 'rotated');
is(created($r), $born, 'rotated: the same time');

$r = $b->get('/app/login');
is(created($r), $born, 'login by the application: the same time');

# a thief under clear gets a session of its own

my $thief = $b->clone(ua => 'Thief/1');
($r, $before, $after) = timed($thief, '/');
my $own = created($r);
is(session_vars($r)->{violation}, 'fingerprint', 'thief: violation');
ok($own =~ /^\d+$/ && $own >= $before && $own <= $after && $own > $born,
	"thief: a new session's time ($own, not $born)");

# empty where there is no session to speak of

my $victim = browser();
$victim->get('/deny');
is(created($victim->clone(ua => 'Thief/2')->get('/deny')), '', 'deny: empty');
is(created($b->get('/bypass')), '', 'bypass: empty');
is(created($b->get('/off')), '', 'module off: empty');

$b = browser();
$b->get('/');
is(created($b->get('/app/logout')), '', 'logout: empty');
isnt(created($b->get('/')), '', 'the next visit: a new session');

###############################################################################
