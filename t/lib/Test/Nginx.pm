package Test::Nginx;

# Minimal nginx test harness: an independent implementation of the subset of
# the nginx-tests library API (lib/Test/Nginx.pm) that this project's tests
# use, so the same t/*.t run unchanged against either.  Same TEST_NGINX_* env.

use strict;
use warnings;

use Exporter qw/ import /;
use File::Path qw/ rmtree /;
use File::Spec;
use File::Temp qw/ tempdir /;
use IO::Socket::INET;
use POSIX qw/ WNOHANG /;
use Test::More qw//;

our @EXPORT = qw/ log_in log_out http http_get http_head port /;
our @EXPORT_OK = qw/
    http_gzip_request http_gzip_like http_start http_end http_content
/;
our %EXPORT_TAGS = (gzip => [qw/ http_gzip_request http_gzip_like /]);

our $NGINX = $ENV{TEST_NGINX_BINARY} // '../nginx/objs/nginx';
our %ports;    # test port number => { port => real one, socket => its lock }
our $TODO;     # Test::Builder looks here during the final "no alerts" check

my $IO_TIMEOUT = 8;     # seconds for one request/response exchange
my $POLL_STEP = 0.1;    # seconds between polls in the wait helpers

# Modules built only when asked for: present if the pattern matches `nginx -V`.
# Names in neither table are a pattern themselves (e.g. "http_ssl", "http_v2").
my %OPT_IN = (
    sni        => qr/TLS SNI support enabled/,
    mail       => qr/--with-mail(?:=dynamic|(?!\S))/,
    stream     => qr/--with-stream(?:=dynamic|(?!\S))/,
    stream_ssl => qr/--with-stream_ssl_module/,
    map +($_ => qr/--with-http_${_}_module/),
        qw/ flv perl auth_request realip sub /,
);

# Modules built by default: present unless `nginx -V` shows them switched off.
my %OPT_OUT = (
    http  => qr/--without-http(?!\S)/,
    cache => qr/--without-http-cache/,
    pcre  => qr/--without-pcre/,
    upstream_sticky => qr/--without-http_upstream_sticky/,
    (map +($_ => qr/--without-http_${_}_module/), qw/ charset gzip ssi
        mirror userid access auth_basic autoindex geo map referer rewrite
        proxy fastcgi uwsgi scgi grpc memcached limit_conn limit_req empty_gif
        browser split_clients tunnel upstream_hash upstream_ip_hash
        upstream_least_conn upstream_least_time upstream_random
        upstream_keepalive upstream_zone /),
    (map +("stream_$_" => qr/--without-stream_${_}_module/), qw/ access
        geo limit_conn map pass return set split_clients upstream_hash
        upstream_least_conn upstream_least_time upstream_random
        upstream_zone /),
    (map +($_ => qr/--without-mail_${_}_module/), qw/ pop3 imap smtp /),
);

# Possibly dynamic modules (feature => shared object), present when loaded via
# TEST_NGINX_GLOBALS; %%TEST_GLOBALS%% loads the binary's own ones in order.
my @DYNAMIC = (
    http_geoip => 'ngx_http_geoip_module',
    image_filter => 'ngx_http_image_filter_module',
    perl => 'ngx_http_perl_module', xslt => 'ngx_http_xslt_filter_module',
    mail => 'ngx_mail_module', stream => 'ngx_stream_module',
    stream_geoip => 'ngx_stream_geoip_module',
);
my %DYNAMIC = @DYNAMIC;

sub new {
    my ($class) = @_;
    my $dir = tempdir('nginx-test-XXXXXXXXXX', TMPDIR => 1);    # dies on error
    # _testdir is the key the upstream library uses; some tests read it
    my $self = bless { _testdir => $dir, owner_pid => $$, check_alert => 1,
        daemons => [] }, ref $class || $class;
    Test::More::BAIL_OUT("no $NGINX binary found") unless -x $NGINX;
    return $self;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $@, $!);
    # forked helpers carry a copy of this object; only its creator cleans up
    return if $self->{owner_pid} != $$;

    $self->stop();
    $self->stop_daemons();

    # plan() reserved two extra tests for these log checks
    if (Test::More->builder->expected_tests) {
        my $log = $self->_log_text();
        local $TODO = $self->{check_alert} ? undef : 'alerts';
        my @alerts = $log =~ /.+\[alert\].+/gm;
        Test::More::is(join("\n", @alerts), '', 'no alerts');

        local $TODO;
        my @reports = $log =~ /.+Sanitizer.+/gm;
        Test::More::is(join("\n", @reports), '', 'no sanitizer errors');
    }

    print $self->_log_text() if $ENV{TEST_NGINX_CATLOG};
    eval { rmtree($self->{_testdir}) } unless $ENV{TEST_NGINX_LEAVE};
}

sub _log_text { return eval { $_[0]->read_file('error.log') } // '' }

sub has {
    my ($self, @features) = @_;
    for my $feature (@features) {
        next if $self->has_module($feature) || $self->has_feature($feature);
        Test::More::plan(skip_all => "no $feature available");
    }
    return $self;
}

sub _build_info { return $_[0]{build_info} //= _capture($NGINX, '-V') }

sub has_module {
    my ($self, $feature) = @_;
    my $info = $self->_build_info();
    if (my $off = $OPT_OUT{$feature}) {
        return 1 if $info !~ $off;
    } else {
        return 1 if $info =~ ($OPT_IN{$feature} // qr/$feature/);
    }
    my $so = $DYNAMIC{$feature};
    return 0 unless defined $so && defined $ENV{TEST_NGINX_GLOBALS};
    return $ENV{TEST_NGINX_GLOBALS}
        =~ /load_module\s+[^;]*\Q$so\E[-\w]*\.so\s*;/ ? 1 : 0;
}

sub has_feature {
    my ($self, $feature) = @_;
    return $^O ne 'MSWin32' if $feature =~ /^(?:symlink|unix|udp)$/;
    if ($feature =~ /^socket_ssl(_\w+)?$/) {
        my $ssl = 'IO::Socket::SSL';
        my $probe = { '' => sub { 1 }, _sni => sub { $ssl->can_client_sni },
            _alpn => sub { $ssl->can_alpn },
            _reused => sub { $ssl->can('get_session_reused') },
            _sslversion => sub { $ssl->can('get_sslversion') } }->{$1 // ''}
            or return 0;
        return eval { require IO::Socket::SSL; $probe->() } ? 1 : 0;
    }
    if ($feature =~ /^(openssl|libressl):([0-9.]+)([a-z]*)/) {
        my @need = (split(/\./, $2), unpack('C*', $3));    # "w" in "1.1.1w"
        $self->_build_info() =~ /with $1 ([0-9.]+)([a-z]*)/i or return 0;
        return _version_ge([ split(/\./, $1), unpack('C*', $2) ], \@need);
    }
    return 0;
}

sub has_version {
    my ($self, $need) = @_;
    my ($have) = $self->_build_info() =~ m!nginx version: nginx/([0-9.]+)!;
    return _version_ge([ split /\./, $have // '' ], [ split /\./, $need ]);
}

# Compares lists of numeric version components; missing ones count as zero.
sub _version_ge {
    my ($have, $need) = @_;
    for my $i (0 .. $#$need) {
        my $h = $have->[$i] || 0;
        return 0 if $need->[$i] > $h;
        return 1 if $need->[$i] < $h;
    }
    return 1;
}

sub has_daemon {
    my ($self, $daemon) = @_;
    my @paths = $daemon =~ m!/! ? ($daemon)
        : map { "$_/$daemon" } grep { length } split /:/, $ENV{PATH} // '';
    Test::More::plan(skip_all => "$daemon not found")
        unless grep { -f $_ && -x $_ } @paths;
    return $self;
}

sub plan {
    my ($self, $count) = @_;
    # two more for the alert and sanitizer checks made in DESTROY
    Test::More::plan(tests => $count + 2);
    return $self;
}

sub todo_alerts { $_[0]{check_alert} = 0; return $_[0] }

# nginx's arguments; "-g" only if the config lacks %%TEST_GLOBALS%%.
sub _nginx_args {
    my ($self, @extra) = @_;
    my $dir = $self->{_testdir};
    my @args = ('-p', "$dir/", '-c', 'nginx.conf', '-e', 'error.log', @extra);
    push @args, '-g', "pid $dir/nginx.pid; error_log $dir/error.log debug;"
        unless defined $self->{_test_globals};
    return @args;
}

sub run {
    my ($self, $conf) = @_;
    my $dir = $self->{_testdir};
    if (defined $conf) {
        open my $fh, '<', $conf or die "Can't open $conf: $!\n";
        $self->write_file_expand('nginx.conf', do { local $/; <$fh> });
    }

    my @cmd = ($NGINX, $self->_nginx_args());
    my $pid = fork() // die "Unable to fork(): $!\n";
    if ($pid == 0) {
        exec { $cmd[0] } @cmd or warn "Unable to exec(): $!\n";
        POSIX::_exit(1);
    }

    my $up = $self->waitforfile("$dir/nginx.pid", $pid);
    unless ($up) {
        # undef: timed out, so it may be running without a pid file
        _terminate($pid, KILL => 1) unless defined $up;
        die "Can't start nginx";
    }

    $self->{nginx_pid} = $pid;
    $self->{started} = 1;
    return $self;
}

sub try_run {
    my ($self, $message) = @_;
    # failing is an expected outcome here: keep nginx's complaints quiet
    open my $saved, '>&', \*STDERR or die "Can't dup STDERR: $!";
    open STDERR, '>', File::Spec->devnull();
    my $ok = eval { $self->run(); 1 };
    open STDERR, '>&', $saved;
    return $self if $ok;

    if ($ENV{TEST_NGINX_VERBOSE}) {
        log_core($_) for split /^/m, $self->_log_text();
    }
    Test::More::plan(skip_all => $message);
    return $self;
}

sub _master_pid {
    my ($self) = @_;
    my $pid = eval { $self->read_file('nginx.pid') } // $self->{nginx_pid};
    return (($pid // '') =~ /(\d+)/)[0];
}

# Calls $check until it returns a defined value (or ~$seconds pass: undef).
sub _poll {
    my ($seconds, $check) = @_;
    for (0 .. $seconds / $POLL_STEP) {
        my $res = $check->();
        return $res if defined $res;
        select undef, undef, undef, $POLL_STEP;
    }
    return undef;
}

# Waits for a process to be reaped; not being our child also counts as gone.
sub _reap {
    my ($pid, $seconds) = @_;
    return _poll($seconds, sub { waitpid($pid, WNOHANG) != 0 ? 1 : undef });
}

# Sends each signal, allowing the paired seconds to exit; then SIGKILL.
sub _terminate {
    my ($pid, @steps) = @_;
    return unless $pid;
    while (my ($signal, $grace) = splice @steps, 0, 2) {
        kill $signal, $pid;
        return if _reap($pid, $grace);
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub reload {
    my ($self) = @_;
    my $pid = $self->{started} && $self->_master_pid();
    kill 'HUP', $pid if $pid;
    return $self;
}

sub stop {
    my ($self) = @_;
    return $self unless $self->{started};
    # graceful shutdown first: it may have to wait for requests in flight
    _terminate($self->_master_pid(), QUIT => 90, TERM => 10);
    $self->{started} = 0;
    return $self;
}

sub run_daemon {
    my ($self, $code, @args) = @_;
    my $pid = fork() // die "Can't fork daemon: $!\n";
    if ($pid == 0) {
        if (ref $code eq 'CODE') { $code->(@args); exit 0 }
        exec($code, @args) or warn "Can't exec $code: $!\n";
        POSIX::_exit(1);
    }
    push @{$self->{daemons}}, $pid;
    return $self;
}

sub stop_daemons {
    my ($self) = @_;
    _terminate($_, TERM => 5) for splice @{$self->{daemons}};
    return $self;
}

# True once the file exists; 0 if $pid exits first; undef after ~5 seconds.
sub waitforfile {
    my ($self, $file, $pid) = @_;
    my $gone;
    return _poll(5, sub {
        return 1 if -e $file;
        return 0 if $gone;    # had one more look after the process exited
        $gone = $pid && waitpid($pid, WNOHANG) != 0;
        return undef;
    });
}

sub waitforsocket {
    my ($self, $peer) = @_;
    return _poll(5, sub {
        IO::Socket::INET->new(Proto => 'tcp', PeerAddr => $peer) ? 1 : undef;
    });
}

sub dump_config { return _capture($NGINX, '-T', $_[0]->_nginx_args()) }

# Runs a command without a shell, returning its stdout and stderr together.
sub _capture {
    my @cmd = @_;
    my $pid = open(my $out, '-|') // die "Can't fork: $!\n";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or print "Can't exec $cmd[0]: $!\n";
        POSIX::_exit(1);
    }
    my $text = do { local $/; <$out> };
    close $out;
    return $text // '';
}

sub testdir { return $_[0]{_testdir} }

sub read_file {
    my ($self, $name) = @_;
    open my $fh, '<', "$self->{_testdir}/$name" or die "Can't open $name: $!";
    local $/;
    return scalar <$fh>;
}

sub write_file {
    my ($self, $name, $content) = @_;
    open my $fh, '>', "$self->{_testdir}/$name"
        or die "Can't create $name: $!";
    binmode $fh;
    print {$fh} $content;
    close $fh or die "Can't write $name: $!";
    return $self;
}

sub write_file_expand {
    my ($self, $name, $content) = @_;
    $content =~ s/%%TEST_GLOBALS%%/$self->test_globals()/ge;
    $content =~ s/%%TEST_GLOBALS_HTTP%%/$self->test_globals_http()/ge;
    $content =~ s/%%TEST_GLOBALS_STREAM%%/$self->test_globals_stream()/ge;
    $content =~ s/%%TESTDIR%%/$self->{_testdir}/g;

    # literal loopback ports in the 8000s are remapped too, as upstream does
    $content =~ s/127\.0\.0\.1:(8\d\d\d)/'127.0.0.1:' . port($1)/ge;
    $content =~ s/%%PORT_(\d+)%%/port($1)/ge;
    $content =~ s/%%PORT_(\d+)_UDP%%/port($1, udp => 1)/ge;
    return $self->write_file($name, $content);
}

sub test_globals {
    my ($self) = @_;
    my $dir = $self->{_testdir};
    my $user = $ENV{TEST_NGINX_GLOBALS} // '';
    return $self->{_test_globals} //= join '',
        "pid $dir/nginx.pid;\n", "error_log $dir/error.log debug;\n",
        $user,
        $self->test_globals_modules(),
        $user =~ /env PERL5LIB/ ? '' : $self->test_globals_perl5lib();
}

sub _binary_dir {
    my (undef, $dir) = File::Spec->splitpath($NGINX);
    return File::Spec->rel2abs($dir eq '' ? '.' : $dir) =~ s!/+\z!!r;
}

sub test_globals_modules {
    my ($self) = @_;
    my $dir = defined $ENV{TEST_NGINX_MODULES}
        ? File::Spec->rel2abs($ENV{TEST_NGINX_MODULES}) =~ s!/+\z!!r
        : _binary_dir();
    my ($info, @dynamic, $out) = ($self->_build_info(), @DYNAMIC);
    while (my ($feature, $so) = splice @dynamic, 0, 2) {
        # "--with-mail=dynamic", "--with-http_perl_module=dynamic", ...
        my $flag = $feature =~ /^(?:mail|stream)$/ ? '' : '\S+';
        $out .= "load_module $dir/$so.so;\n"
            if $info =~ /$feature$flag=dynamic/;
    }
    return $out // '';
}

# Lets the perl module find its modules inside an nginx build tree.
sub test_globals_perl5lib {
    my ($self) = @_;
    return '' unless $self->has_module('perl');
    my $perl = _binary_dir() . '/src/http/modules/perl';
    return "env PERL5LIB=$perl:$perl/blib/arch;\n";
}

sub test_globals_http {
    my ($self) = @_;
    my $dir = $self->{_testdir};
    return $self->{_test_globals_http} //= join '',
        "root $dir;\n", "access_log $dir/access.log;\n",
        "client_body_temp_path $dir/client_body_temp;\n",
        (map { "${_}_temp_path $dir/${_}_temp;\n" }
            grep { $self->has_module($_) } qw/ fastcgi proxy uwsgi scgi /),
        $ENV{TEST_NGINX_GLOBALS_HTTP} // '';
}

sub test_globals_stream {
    return $_[0]{_test_globals_stream}
        //= $ENV{TEST_NGINX_GLOBALS_STREAM} // '';
}

# Maps a test's port number to a free loopback port, fixed for the run: the
# number itself, else random ones from its block of 500.  A socket of the
# *other* protocol stays bound to the chosen port, which leaves it free for
# nginx but marks it as taken for concurrent test processes.
sub port {
    shift if ref $_[0] && eval { $_[0]->isa(__PACKAGE__) };    # $t->port(n)
    my ($num, %opts) = @_;
    my $entry = $ports{$num} //= _claim_port($num, $opts{udp});
    return $opts{socket} ? $entry->{socket} : $entry->{port};
}

sub _claim_port {
    my ($num, $udp) = @_;
    my $bind = sub {
        my ($proto, $port) = @_;
        IO::Socket::INET->new(Proto => $proto, LocalAddr => "127.0.0.1:$port",
            $proto eq 'tcp' ? (Listen => 1, ReuseAddr => 1) : ());
    };
    my ($want, $other) = $udp ? qw/ udp tcp / : qw/ tcp udp /;
    my $base = int($num / 500) * 500;
    for my $candidate ($num, map { $base + int rand 500 } 1 .. 9) {
        my $lock = $bind->($other, $candidate) or next;
        $bind->($want, $candidate) or next;
        return { port => $candidate, socket => $lock };
    }
    die "Port limit exceeded";
}

sub log_core {
    return unless $ENV{TEST_NGINX_VERBOSE};
    my ($prefix, $msg) = defined $_[1] ? @_ : ('', $_[0]);
    $prefix .= ' ' if length $prefix;
    $msg = substr($msg, 0, 2048) . '(...logged only 2048 of ' . length($msg)
        . ' bytes)' if length $msg > 2048;
    # one TAP comment line per input line, control bytes made visible
    my $out = '';
    for my $line (length $msg ? split(/^/m, $msg) : ('')) {
        my $eol = $line =~ /\n\z/ ? "\n" : '';
        $line =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
        $out .= "# $prefix$line$eol";
    }
    $out .= "\n" unless $out =~ /\n\z/;
    print $out;
}

sub log_out { log_core('>>', @_) }
sub log_in  { log_core('<<', @_) }

# Requests go out exactly as given; like upstream, bare LF line endings here.
sub http_get($;%) {
    my ($uri, %extra) = @_;
    return http("GET $uri HTTP/1.0\nHost: localhost\n\n", %extra);
}

sub http_head($;%) {
    my ($uri, %extra) = @_;
    return http("HEAD $uri HTTP/1.0\nHost: localhost\n\n", %extra);
}

# Returns the whole raw response (undef on error or timeout), or with
# start => 1 the socket, for http_end.
sub http($;%) {
    my ($request, %extra) = @_;
    my $sock = http_start($request, %extra);
    return $sock if !defined $sock || $extra{start};
    return http_end($sock, %extra);
}

# Runs $code under the I/O timeout; false (and logged) on any error.
sub _guarded {
    my ($code) = @_;
    my $ok = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        local $SIG{PIPE} = sub { die "sigpipe\n" };
        alarm $IO_TIMEOUT;
        $code->();
        alarm 0;
        1;
    };
    alarm 0;
    log_in("died: $@") unless $ok;
    return $ok;
}

sub http_start($;%) {
    my ($request, %extra) = @_;
    my $sock;
    _guarded(sub {
        # every option also goes to the socket constructors, so callers can
        # override PeerAddr or pass SSL_* settings
        $sock = $extra{socket} || IO::Socket::INET->new(
            Proto    => 'tcp',
            PeerAddr => '127.0.0.1:' . port($extra{SSL} ? 8443 : 8080),
            %extra,
        ) or die "Can't connect to nginx: $!\n";

        if ($extra{SSL}) {
            require IO::Socket::SSL;
            IO::Socket::SSL->start_SSL($sock,
                SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE(),
                %extra,
            ) or die IO::Socket::SSL::errstr() . "\n";
            unless (defined $extra{SSL_startHandshake}) {
                log_in('ssl cipher: ' . $sock->get_cipher());
                log_in('ssl cert: ' . $sock->peer_certificate('issuer'));
            }
        }

        log_out($request);
        $sock->print($request);
        select undef, undef, undef, $extra{sleep} if $extra{sleep};
        if ($extra{body} && !$extra{aborted}) {
            log_out($extra{body});
            $sock->print($extra{body});
        }
    }) or return undef;
    return $sock;
}

sub http_end($;%) {
    my ($sock) = @_;
    my $reply;
    _guarded(sub {
        local $/;
        $reply = $sock->getline();
        $sock->close();
    }) or return undef;
    log_in($reply);
    return $reply;
}

# Body of a raw response, de-chunked; "[no-last-chunk]" marks a truncated one.
sub http_content {
    my ($text) = @_;
    return undef unless defined $text;
    my ($head, $body) = $text =~ /^(.*?)\r\n?\r\n?(.*)\z/s or return undef;
    return $body if $head !~ /Transfer-Encoding: chunked/i;

    my ($content, $size) = ('', -1);
    while ($body =~ /\G\r?\n?([0-9a-f]+)\r\n?/gci) {
        $size = hex $1;
        my $at = pos $body;
        $content .= substr($body, $at, $size);
        pos($body) = $at + $size;
    }
    return $size == 0 ? $content : $content . '[no-last-chunk]';
}

sub http_gzip_request {
    return http("GET $_[0] HTTP/1.1\nHost: localhost\nConnection: close\n"
        . "Accept-Encoding: gzip\n\n");
}

# like() on the gunzipped body; skipped without IO::Uncompress::Gunzip.
sub http_gzip_like {
    my ($text, $re, $name) = @_;
    SKIP: {
        eval { require IO::Uncompress::Gunzip }
            or Test::More::skip('IO::Uncompress::Gunzip not installed', 1);
        my ($in, $out) = (http_content($text));
        IO::Uncompress::Gunzip::gunzip(\$in => \$out);
        Test::More->builder->like($out, $re, $name);
    }
}

1;
