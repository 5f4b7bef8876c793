console.log("optional binaries: (setup script pending)")
