// autoctl: operator CLI of autofailover. Exit codes: see exit_codes.h.
#include "autoctl/command_tree.h"
#include "autoctl/exit_codes.h"

#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"autoctl: create and operate autofailover formations (monitor + keepers)", "autoctl"};
    autoctl::build_command_tree(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : static_cast<int>(autoctl::ExitCode::BadArguments);
    } catch (const autoctl::ExitWith& e) {
        return e.status();
    } catch (const autoctl::CliError& e) {
        std::cerr << "autoctl: " << e.what() << "\n";
        return static_cast<int>(e.code());
    } catch (const std::exception& e) {
        std::cerr << "autoctl: unexpected error: " << e.what() << "\n";
        return static_cast<int>(autoctl::ExitCode::LocalPostgresError);
    }
    return 0;
}
