from benchmarks.generality import main

main()
