# Appends the cargo build of the static library to nginx's objs/Makefile
# (sourced by nginx's configure after it wrote the Makefile).

ngx_paranoid_objs=$(cd "$NGX_OBJS" && pwd)

cat << END                                                >> $NGX_MAKEFILE

# cargo tracks its own inputs, so it always runs.
.PHONY: $ngx_paranoid_lib

$ngx_paranoid_lib:
	NGINX_SOURCE_DIR="$(pwd)" NGINX_BUILD_DIR="$ngx_paranoid_objs" \\
	${NGX_CARGO:-cargo} rustc --release --crate-type staticlib \\
		--manifest-path "$ngx_addon_dir/Cargo.toml" \\
		--lib --no-default-features \\
		--target-dir "$ngx_paranoid_objs/paranoid_session"

END

case " $DYNAMIC_MODULES " in
    *" ngx_http_paranoid_session_module "*)
    cat << END                                            >> $NGX_MAKEFILE
$NGX_OBJS${ngx_dirsep}ngx_http_paranoid_session_module$ngx_modext: $ngx_paranoid_lib

END
    ;;
esac
